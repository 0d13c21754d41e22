/** The gateway's one application service: what a request may do (admit, check, run, record), whichever transport it came by. */
package io.agentexec.gateway.service;
