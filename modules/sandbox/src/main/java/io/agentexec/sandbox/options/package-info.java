/** What sandbox options may ask for: AG2's docker_run_args (RunArgs), the rules that refuse weaker isolation (OptionRules), users. */
package io.agentexec.sandbox.options;
