package io.agentexec.sandbox.agent;

import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * A scrub request: everything a one-off's run could leave in its sandbox is reset by the agent, so that the sandbox can
 * serve another one-off of the same owner (see handle_scrub in agentexec-agent.c for what is reset and checked).
 *
 * @param directories the sandbox's writable mounts, emptied, each given back its mode
 * @param keepZygote  spare a zygote an earlier scrub started for {@code prime}'s command and environment, if no block
 *                    touched it (else every process but the agent is killed)
 * @param killWait    how long the processes left may take to die before the scrub fails
 * @param prime       a run whose zygote the agent starts after the scrub, in the emptied sandbox (its argv, environment
 *                    and directory are those of the blocks that will fork from it); empty: none
 */
public record Scrub(List<Directory> directories, boolean keepZygote, Duration killWait, Optional<RunSpec> prime) {
    /** Directories the agent empties: at most this many (the agent's bound). */
    public static final int MAX_DIRECTORIES = 16;

    /**
     * @param mode the directory's mode after the scrub; 0 leaves it as it is (a directory the sandbox's user does not
     *             own, such as Docker's /dev/shm, whose mode it cannot change anyway)
     */
    public record Directory(String path, int mode) {
        public Directory {
            Objects.requireNonNull(path, "path");
            if (!path.startsWith("/")) {
                throw new IllegalArgumentException("a scrubbed directory is an absolute path, got " + path);
            }
            if (mode < 0 || mode > 07777) {
                throw new IllegalArgumentException("a directory mode is 0 to 07777, got " + Integer.toOctalString(mode));
            }
        }
    }

    public Scrub {
        directories = List.copyOf(directories);
        if (directories.size() > MAX_DIRECTORIES) {
            throw new IllegalArgumentException("at most " + MAX_DIRECTORIES + " directories are scrubbed, got "
                    + directories.size());
        }
        Objects.requireNonNull(killWait, "killWait");
        Objects.requireNonNull(prime, "prime");
        prime.ifPresent(p -> {
            if (p.zygote().isEmpty()) {
                throw new IllegalArgumentException("a scrub's prime names the zygote to start");
            }
        });
    }
}
