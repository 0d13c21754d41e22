-- The worker nodes that ever started in this cluster, one row per incarnation (cluster address and uid),
-- written by each worker when it starts and when it is up. A worker sharing a Docker daemon with another
-- tells from it that a container's owner was a node of this cluster that is gone (ContainerReaper):
-- another cluster's containers on the same daemon are never in this table, so never removed. Times are
-- epoch milliseconds of the writing node.
CREATE TABLE IF NOT EXISTS agentexec_nodes (
  address VARCHAR(512) NOT NULL,
  uid BIGINT NOT NULL,
  node_name VARCHAR(253) NOT NULL,
  started_at BIGINT NOT NULL,
  up_at BIGINT,
  PRIMARY KEY (address, uid)
);
