/** The language table (configuration): names, aliases, images, commands. */
package io.agentexec.sandbox.language;
