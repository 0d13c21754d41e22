-- Event payloads of up to 16 KiB are kept in their row instead of H2's separate LOB storage (its default keeps only
-- 256 bytes in the row). An execution's events are a few hundred bytes to a few KiB, so with the default every
-- journal write also wrote four LOB maps and left work for H2's LOB cleaner: measured on this machine, an insert of a
-- 600-byte or 3,000-byte payload committed alone (WRITE_DELAY=0) cost 0.62-0.67 ms of the writing thread's CPU and
-- ~1.4 ms of the process's, against 0.29-0.31 ms and ~0.7 ms in the row. Larger payloads (long outputs) still go to
-- LOB storage, so a page of the journal never carries them. The setting is persistent in the database; rows written
-- before it stay where they are and read alike. PostgreSQL stores BYTEA in the row already (TOAST past ~2 KB).
SET MAX_LENGTH_INPLACE_LOB 16384;
