/** Tenants: API keys, request rates, and what each may run (its Caller for the execution port). */
package io.agentexec.gateway.tenant;
