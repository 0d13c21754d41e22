package io.agentexec.cluster.api;

import io.agentexec.cluster.CborSerializable;
import java.util.Objects;

/**
 * One try of an execution on one worker. A reply lists every attempt, so a caller always knows
 * when its code may have run more than once.
 *
 * @param worker     the worker actor's path
 * @param outcome    what became of it, for humans: "completed", "worker lost: ...", "sandbox error: ..."
 * @param mayHaveRun false only when the failure came before any of the user's code could start
 */
public record Attempt(int number, String worker, String outcome, boolean mayHaveRun) implements CborSerializable {
    public Attempt {
        Objects.requireNonNull(worker, "worker");
        Objects.requireNonNull(outcome, "outcome");
    }
}
