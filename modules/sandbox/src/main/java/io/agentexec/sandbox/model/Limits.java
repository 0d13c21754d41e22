package io.agentexec.sandbox.model;

import java.time.Duration;
import java.util.Locale;
import java.util.Objects;

/**
 * Resource limits for one run. Memory, CPUs and pids are enforced by the sandbox's cgroup;
 * the timeout and output caps by the in-sandbox agent; the workspace size by its tmpfs.
 */
public record Limits(
        Duration timeout,
        long memoryBytes,
        double cpus,
        int pids,
        long outputBytesPerStream,
        long workspaceBytes) {

    public Limits {
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative() || timeout.isZero()) {
            throw new InvalidRequestException("limits.timeout must be positive, got " + timeout);
        }
        if (timeout.compareTo(Duration.ofHours(24)) > 0) {
            throw new InvalidRequestException("limits.timeout must be at most 24h, got " + timeout);
        }
        if (memoryBytes < 6L * 1024 * 1024) {
            throw new InvalidRequestException("limits.memory must be at least 6m (Docker's minimum), got " + memoryBytes + " bytes");
        }
        if (!(cpus > 0) || Double.isInfinite(cpus)) {
            throw new InvalidRequestException("limits.cpus must be a positive number, got " + cpus);
        }
        if (pids < 1) {
            throw new InvalidRequestException("limits.pids must be at least 1, got " + pids);
        }
        if (outputBytesPerStream < 1) {
            throw new InvalidRequestException("limits.outputBytes must be at least 1, got " + outputBytesPerStream);
        }
        if (workspaceBytes < 1024 * 1024) {
            throw new InvalidRequestException("limits.workspace must be at least 1m, got " + workspaceBytes + " bytes");
        }
    }

    public Limits withTimeout(Duration value) {
        return new Limits(value, memoryBytes, cpus, pids, outputBytesPerStream, workspaceBytes);
    }

    public Limits withMemoryBytes(long value) {
        return new Limits(timeout, value, cpus, pids, outputBytesPerStream, workspaceBytes);
    }

    public Limits withCpus(double value) {
        return new Limits(timeout, memoryBytes, value, pids, outputBytesPerStream, workspaceBytes);
    }

    public Limits withPids(int value) {
        return new Limits(timeout, memoryBytes, cpus, value, outputBytesPerStream, workspaceBytes);
    }

    public Limits withOutputBytesPerStream(long value) {
        return new Limits(timeout, memoryBytes, cpus, pids, value, workspaceBytes);
    }

    public Limits withWorkspaceBytes(long value) {
        return new Limits(timeout, memoryBytes, cpus, pids, outputBytesPerStream, value);
    }

    /** Parses Docker-style sizes: {@code 512m}, {@code 1g}, {@code 65536}, {@code 64k}. */
    public static long parseBytes(String text) {
        String s = Objects.requireNonNull(text, "size").trim().toLowerCase(Locale.ROOT);
        if (s.endsWith("b")) {
            s = s.substring(0, s.length() - 1);
        }
        long unit = 1;
        if (!s.isEmpty()) {
            switch (s.charAt(s.length() - 1)) {
                case 'k' -> unit = 1024L;
                case 'm' -> unit = 1024L * 1024;
                case 'g' -> unit = 1024L * 1024 * 1024;
                default -> unit = 1;
            }
        }
        String digits = unit == 1 ? s : s.substring(0, s.length() - 1);
        try {
            long value = Long.parseLong(digits);
            if (value < 0) {
                throw new InvalidRequestException("size must not be negative: " + text);
            }
            return Math.multiplyExact(value, unit);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new InvalidRequestException("not a size (like 512m or 1g): " + text);
        }
    }
}
