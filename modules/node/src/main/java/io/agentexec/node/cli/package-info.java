/** The one command line (bin/agentexec): exec, languages, serve, chat and the client commands, one exit-code table. */
package io.agentexec.node.cli;
