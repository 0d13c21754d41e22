package io.agentexec.cluster.executors;

import java.util.LinkedHashMap;
import java.util.Map;

/** A map bounded to its most recently used entries (the least recently used dropped first). Not thread-safe. */
final class Lru<K, V> extends LinkedHashMap<K, V> {
    private final int maxEntries;

    Lru(int maxEntries) {
        super(16, 0.75f, true);
        this.maxEntries = maxEntries;
    }

    @Override
    protected boolean removeEldestEntry(Map.Entry<K, V> eldest) {
        return size() > maxEntries;
    }
}
