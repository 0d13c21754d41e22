/** The journal's database: dialects and schema migrations (Flyway). */
package io.agentexec.cluster.persistence;
