/** Sandboxes as bubblewrap namespaces: unprivileged uid mapping, seccomp, read-only root, cgroup v1/v2 limits. */
package io.agentexec.sandbox.bwrap;
