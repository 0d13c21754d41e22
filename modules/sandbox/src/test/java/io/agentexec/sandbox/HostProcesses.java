package io.agentexec.sandbox;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** Reads the host's process table: processes inside containers and namespaces show there too. */
final class HostProcesses {
    private HostProcesses() {
    }

    /** Pids of live processes whose command line contains {@code marker}. */
    static List<Long> withMarker(String marker) {
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            return procs.filter(p -> p.getFileName().toString().matches("\\d+"))
                    .filter(p -> {
                        try {
                            byte[] cmd = Files.readAllBytes(p.resolve("cmdline"));
                            return new String(cmd, StandardCharsets.UTF_8).replace('\0', ' ').contains(marker)
                                    && !isZombie(p);
                        } catch (IOException e) {
                            return false;
                        }
                    })
                    .map(p -> Long.parseLong(p.getFileName().toString()))
                    .filter(pid -> pid != ProcessHandle.current().pid())
                    .toList();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static boolean isZombie(Path proc) throws IOException {
        String stat = Files.readString(proc.resolve("stat"));
        return stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
    }
}
