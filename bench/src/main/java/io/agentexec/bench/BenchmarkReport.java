package io.agentexec.bench;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Writes one benchmark's section into docs/benchmarks.md, between {@code <!-- NAME:start -->} and
 * {@code <!-- NAME:end -->}, so that each benchmark program keeps its own table up to date.
 */
public final class BenchmarkReport {
    private BenchmarkReport() {
    }

    /** Percentile (0-100) of samples in milliseconds, nearest rank. */
    public static double percentile(double[] samples, double p) {
        double[] sorted = samples.clone();
        Arrays.sort(sorted);
        int rank = (int) Math.ceil(p / 100.0 * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }

    /** A line naming the machine and the date, for the top of a section. */
    public static String machineLine() {
        String host;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            host = "unknown";
        }
        long memGb = Math.round(((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                .getOperatingSystemMXBean()).getTotalMemorySize() / 1e9);
        return String.format(Locale.ROOT, "Measured %s on %s: %d cores, %d GB, %s %s, Java %s.",
                ZonedDateTime.now().format(DateTimeFormatter.ISO_LOCAL_DATE), host,
                Runtime.getRuntime().availableProcessors(), memGb, System.getProperty("os.name"),
                System.getProperty("os.version"), System.getProperty("java.version"));
    }

    /** The machine's load average (1, 5, 15 min), for the notes under a table. */
    public static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
            return f[0] + ", " + f[1] + ", " + f[2];
        } catch (IOException e) {
            return "unknown";
        }
    }

    public static void writeSection(Path file, String name, List<String> lines) throws IOException {
        String start = "<!-- " + name + ":start -->";
        String end = "<!-- " + name + ":end -->";
        String body = start + "\n" + String.join("\n", lines) + "\n" + end;
        String text = Files.exists(file) ? Files.readString(file) : "# Benchmarks\n\nWritten by the programs in `bench/`; run `bench/run.sh`.\n";
        int s = text.indexOf(start);
        int e = text.indexOf(end);
        if (s >= 0 && e > s) {
            text = text.substring(0, s) + body + text.substring(e + end.length());
        } else {
            text = text.stripTrailing() + "\n\n" + body + "\n";
        }
        Files.createDirectories(file.toAbsolutePath().getParent());
        Files.writeString(file, text);
    }
}
