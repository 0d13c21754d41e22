/** What the gateway needs from the rest of the node and defines itself: conversations, tenant ids. */
package io.agentexec.gateway.spi;
