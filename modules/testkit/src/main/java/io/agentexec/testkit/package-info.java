/** Fixtures shared by every module's tests: {@link io.agentexec.testkit.FakeModel} and {@link io.agentexec.testkit.Await}. */
package io.agentexec.testkit;
