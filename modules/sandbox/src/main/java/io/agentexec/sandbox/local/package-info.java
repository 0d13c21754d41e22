/** The unsafe-local backend: plain host processes, no isolation, development only. */
package io.agentexec.sandbox.local;
