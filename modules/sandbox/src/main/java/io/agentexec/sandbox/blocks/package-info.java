/** AG2's code blocks: extraction from a message and the '# filename:' directive. */
package io.agentexec.sandbox.blocks;
