/** Model clients: any OpenAI-compatible endpoint, the offline replay model, retries. */
package io.agentexec.agents.llm;
