/** The one neutral interface every backend implements (open a session, capabilities: image present, warm pool, runtime health) and the parts they share. */
package io.agentexec.sandbox.backend;
