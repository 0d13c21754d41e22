/** The operator's one execution policy (ceilings of limits, allowed images), applied on every path and again on the workers. */
package io.agentexec.sandbox.policy;
