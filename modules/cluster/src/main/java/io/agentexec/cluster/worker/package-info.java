/** The one owner of a node's sandbox engine: slots, a bounded queue, the sessions it holds, output streaming. */
package io.agentexec.cluster.worker;
