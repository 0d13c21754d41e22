package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigResolveOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * {@code zygote.enabled = auto}: what the probe measures and what it decides from it, with a machine whose costs the
 * test sets (the real machine's are what {@link ZygoteProbeEngineTest} lets the engine find).
 */
class ZygoteProbeTest {
    private static final ZygoteSettings.Probe PROBE = new ZygoteSettings.Probe(5, 4, 0.1);

    /** A machine where a forked block costs {@code forkTicks} and a started one {@code startTicks}, each 1 ms of wall. */
    private static final class Machine implements ZygoteProbe.Trial, ZygoteProbe.CpuClock {
        final long forkTicks;
        final long startTicks;
        final AtomicLong ticks = new AtomicLong(1000);
        final AtomicLong nanos = new AtomicLong();
        final List<String> runs = new ArrayList<>();
        boolean forks = true;
        boolean readable = true;
        /** Other work's ticks falling on the run of this index (0: the first unmeasured block). */
        int burstAt = -1;
        long burstTicks;

        Machine(long forkTicks, long startTicks) {
            this.forkTicks = forkTicks;
            this.startTicks = startTicks;
        }

        @Override
        public int run(boolean zygote, int blocks) {
            if (runs.size() == burstAt) {
                ticks.addAndGet(burstTicks);
            }
            runs.add((zygote ? "fork" : "start") + " x" + blocks);
            ticks.addAndGet(blocks * (zygote ? forkTicks : startTicks));
            nanos.addAndGet(blocks * 1_000_000L * (zygote ? forkTicks : startTicks));
            return zygote && forks ? blocks : 0;
        }

        @Override
        public OptionalLong busyTicks() {
            return readable ? OptionalLong.of(ticks.get()) : OptionalLong.empty();
        }

        ZygoteProbe.Verdict probe(ZygoteSettings.Probe probe) {
            return ZygoteProbe.decide(ZygoteProbe.measure(this, this, nanos::get, probe), probe.margin());
        }
    }

    @Test
    void whereAForkCostsLessThanAStartBlocksFork() {
        ZygoteProbe.Verdict v = new Machine(2, 3).probe(PROBE);
        assertTrue(v.zygotes(), v.detail());
        assertTrue(v.detail().startsWith("zygotes (a forked block cost 0.67x a plain start"), v.detail());
    }

    /** The PVM guest's case: a fork's exit faults in nearly every page it inherited, 37 ms of CPU against 27 ms. */
    @Test
    void whereAForkCostsMoreThanAStartBeyondTheMarginBlocksStartPlainly() {
        ZygoteProbe.Verdict v = new Machine(37, 27).probe(PROBE);
        assertFalse(v.zygotes(), v.detail());
        assertTrue(v.detail().startsWith("plain starts (a forked block cost 1.37x a plain start, the median of 4 rounds "
                + "of the machine's CPU; in all 740 ticks for 20 forked blocks, 540 for as many plain starts"), v.detail());
    }

    /** A fork answers sooner: within the margin it keeps a near tie. */
    @Test
    void aForkWithinTheMarginIsKept() {
        assertTrue(new Machine(105, 100).probe(PROBE).zygotes());
        assertTrue(new Machine(110, 100).probe(PROBE).zygotes());
        assertFalse(new Machine(111, 100).probe(PROBE).zygotes());
        assertFalse(new Machine(101, 100).probe(new ZygoteSettings.Probe(5, 4, 0)).zygotes());
    }

    /**
     * The machine is busy when an engine starts: a burst of other work during one phase (here the first round's
     * plain starts, as if the warm pool refilled then) moves that round's ratio, not the median of the rounds.
     */
    @Test
    void aBurstOfOtherWorkDuringOnePhaseDoesNotTurnTheVerdict() {
        Machine m = new Machine(37, 27);
        m.burstAt = 3;
        m.burstTicks = 400;
        ZygoteProbe.Verdict v = m.probe(PROBE);
        assertEquals("start x5", m.runs.get(3));
        assertFalse(v.zygotes(), v.detail());
        assertTrue(v.detail().contains("cost 1.37x"), v.detail());
        assertTrue(v.detail().contains("740 ticks for 20 forked blocks, 940 for as many plain starts"),
                "the totals would have chosen forks: " + v.detail());
    }

    @Test
    void theMedianOfAnEvenNumberOfRoundsIsTheMeanOfTheMiddleTwo() {
        assertEquals(1.5, ZygoteProbe.median(List.of(3.0, 1.0, 2.0, 1.0)));
        assertEquals(2.0, ZygoteProbe.median(List.of(3.0, 1.0, 2.0)));
    }

    /** One of each unmeasured first, then the rounds, which kind first alternating: drift favours neither. */
    @Test
    void theRoundsAlternateWhichKindGoesFirstAfterOneUnmeasuredBlockOfEach() {
        Machine m = new Machine(2, 3);
        ZygoteProbe.Measurement measured = ZygoteProbe.measure(m, m, m.nanos::get, new ZygoteSettings.Probe(3, 3, 0.1));
        assertEquals(List.of("fork x1", "start x1", "fork x3", "start x3", "start x3", "fork x3", "fork x3", "start x3"),
                m.runs);
        assertEquals(9, measured.blocks());
        assertEquals(9, measured.forked());
        assertEquals(18, measured.zygoteTicks(), "the unmeasured blocks are not counted");
        assertEquals(27, measured.plainTicks());
    }

    /** An image whose interpreter the zygote refuses: its blocks start plainly anyway, so nothing was compared. */
    @Test
    void whenTheProbesForkedBlocksFellBackNothingIsComparedAndZygotesStay() {
        Machine m = new Machine(30, 30);
        m.forks = false;
        ZygoteProbe.Verdict v = m.probe(PROBE);
        assertTrue(v.zygotes());
        assertTrue(v.detail().contains("not compared: 0 of the probe's 20 blocks forked"), v.detail());
    }

    @Test
    void whereTheMachinesCpuCannotBeReadWallTimeDecides() {
        Machine m = new Machine(37, 27);
        m.readable = false;
        ZygoteProbe.Verdict v = m.probe(PROBE);
        assertFalse(v.zygotes(), v.detail());
        assertTrue(v.detail().contains("wall time (the machine's CPU could not be read)"), v.detail());
        assertTrue(v.detail().contains("wall 37.0 vs 27.0 ms a block"), v.detail());
    }

    @Test
    void busyTimeIsUserNiceSystemIrqAndSoftirqOfProcStat() {
        assertEquals(OptionalLong.of(1 + 2 + 3 + 6 + 7),
                ZygoteProbe.busyTicks("cpu  1 2 3 4 5 6 7 8 9 10"));
        assertEquals(OptionalLong.empty(), ZygoteProbe.busyTicks("cpu0 1 2 3 4 5 6 7 8 9 10"));
        assertEquals(OptionalLong.empty(), ZygoteProbe.busyTicks("cpu 1 2 3"));
        assertEquals(OptionalLong.empty(), ZygoteProbe.busyTicks("cpu 1 2 x 4 5 6 7"));
        assertTrue(ZygoteProbe.procStat().busyTicks().isPresent(), "this Linux machine's /proc/stat is read");
    }

    /** The setting itself: auto by default (read without the environment, which the test run pins), and its spellings. */
    @Test
    void autoIsTheDefaultAndEnabledTakesTrueFalseOrAuto() {
        ZygoteSettings defaults = EngineSettings.zygote(ConfigFactory.parseResources("reference.conf")
                .resolve(ConfigResolveOptions.noSystem()).getConfig("agentexec.sandbox.zygote"));
        assertTrue(defaults.auto());
        assertTrue(defaults.enabled(), "zygotes until the probe decides");
        assertEquals(new ZygoteSettings.Probe(8, 6, 0.1), defaults.probe());
        for (String on : List.of("true", "on", "yes", "TRUE")) {
            ZygoteSettings z = zygote("enabled = " + on);
            assertTrue(z.enabled() && !z.auto(), on);
        }
        for (String off : List.of("false", "off", "no")) {
            ZygoteSettings z = zygote("enabled = " + off);
            assertTrue(!z.enabled() && !z.auto(), off);
        }
        ZygoteSettings auto = zygote("enabled = auto");
        assertTrue(auto.enabled() && auto.auto());
        assertFalse(auto.withEnabled(false).auto(), "what the probe decided is not auto any more");
    }

    @Test
    void badProbeSettingsAreRefusedNamingTheSetting() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> zygote("enabled = sometimes"));
        assertTrue(e.getMessage().contains("agentexec.sandbox.zygote.enabled (AGENTEXEC_ZYGOTE) must be true, false or "
                + "auto, got 'sometimes'"), e.getMessage());
        for (String bad : List.of("probe.blocks = 0", "probe.rounds = -1", "probe.margin = -0.5")) {
            IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> zygote(bad), bad);
            assertTrue(refused.getMessage().contains("agentexec.sandbox.zygote.probe."), refused.getMessage());
        }
    }

    private static ZygoteSettings zygote(String hocon) {
        return EngineSettings.zygote(ConfigFactory.parseString(hocon)
                .withFallback(ConfigFactory.parseResources("reference.conf").getConfig("agentexec.sandbox.zygote"))
                .resolve(ConfigResolveOptions.noSystem()));
    }
}
