/** Sandboxes as Docker containers, in small parts: client factory, container spec, launcher, agent volume, warm pool, removal, reaper, runtime health. */
package io.agentexec.sandbox.docker;
