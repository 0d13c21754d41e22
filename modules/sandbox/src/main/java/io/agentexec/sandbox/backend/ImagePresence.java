package io.agentexec.sandbox.backend;

/** Whether a backend has an image to make sandboxes from (see {@link SandboxBackend#imagePresence}). */
public enum ImagePresence {
    PRESENT,
    /** The backend uses images and does not have this one: a sandbox from it cannot be made here. */
    ABSENT,
    /** The backend uses no images (bubblewrap, unsafe-local), or cannot tell right now (its daemon did not answer). */
    UNKNOWN
}
