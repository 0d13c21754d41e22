/** AG2's AssistantAgent and UserProxyAgent on the cluster: the runtime, configurations, conversations for a front end. */
package io.agentexec.agents;
