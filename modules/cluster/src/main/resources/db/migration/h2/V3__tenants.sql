-- Tenants and their API keys, shared by every gateway node of the cluster (the gateway reads them, cached for
-- agentexec.gateway.auth.refresh-interval; `agentexec tenant create|list|revoke|rotate` writes them). Only the
-- SHA-256 of a key is stored: keys are 32 random bytes, nothing to brute-force. A quota left NULL takes the
-- node's agentexec.gateway.tenant-defaults. Revocation sets revoked_at and never deletes a row, so that an
-- import of an old keys file cannot bring a revoked key back. Times are epoch milliseconds of the writer.
CREATE TABLE IF NOT EXISTS agentexec_tenants (
  tenant_id VARCHAR(64) NOT NULL PRIMARY KEY,
  max_live_sandboxes INTEGER,
  requests_per_second DOUBLE PRECISION,
  burst INTEGER,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
);

CREATE TABLE IF NOT EXISTS agentexec_api_keys (
  key_sha256 CHAR(64) NOT NULL PRIMARY KEY,
  tenant_id VARCHAR(64) NOT NULL REFERENCES agentexec_tenants (tenant_id),
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
);

CREATE INDEX IF NOT EXISTS agentexec_api_keys_tenant ON agentexec_api_keys (tenant_id);
