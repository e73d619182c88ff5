/* `dagctl completion bash`: a bash completion script written from the
 * command and option tables dagctl parses its command line with. Each
 * command's data (its positional arguments, its options, the values an
 * option takes) becomes one line of _dagctl_spec; a fixed function reads
 * it, so a new command or option is completed the moment it is in the
 * table. contrib/dagctl.bash-completion is this output (a test checks).
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "internal.h"

/* "--name" and, for a lettered option, "-x" too. */
static void put_flags(dagd_buf *b, const cli_option *opts) {
  bool first = true;
  for (const cli_option *o = opts; o->name; o++) {
    if (o->letter) dagd_buf_printf(b, "%s-%c", first ? "" : " ", o->val);
    dagd_buf_printf(b, "%s--%s", first && !o->letter ? "" : " ", o->name);
    first = false;
  }
}

/* The options that take a value, as "--name=VALUES": the values
 * "|"-separated, FILE for a file name, nothing for free text. */
static void put_valued(dagd_buf *b, const cli_option *opts) {
  bool first = true;
  for (const cli_option *o = opts; o->name; o++) {
    if (o->arg == NULL) continue;
    const char *v = o->values ? o->values : strcmp(o->arg, "FILE") == 0 ? "FILE" : "";
    if (o->letter) {
      dagd_buf_printf(b, "%s-%c=%s", first ? "" : " ", o->val, v);
      first = false;
    }
    dagd_buf_printf(b, "%s--%s=%s", first ? "" : " ", o->name, v);
    first = false;
  }
}

/* The positional arguments without the brackets of optional ones. */
static void put_args(dagd_buf *b, const char *args) {
  for (const char *p = args; *p; p++)
    if (*p != '[' && *p != ']') dagd_buf_putc(b, *p);
}

static const char script_head[] =
    "# bash completion for dagctl, written by `dagctl completion bash` from the\n"
    "# tables dagctl parses its command line with: regenerate it, do not edit it.\n"
    "# Load it with: source <(dagctl completion bash)\n"
    "# SPDX-License-Identifier: MIT\n"
    "\n"
    "# DAG ids: from the dagd the command line names, else from the DAG folder.\n"
    "_dagctl_dag_ids() {\n"
    "  local out\n"
    "  out=$(timeout 2 dagctl \"${_dagctl_globals[@]}\" -o json dags 2>/dev/null) ||\n"
    "    out=$(timeout 10 dagctl \"${_dagctl_globals[@]}\" -o json validate 2>/dev/null)\n"
    "  grep -o '\"dag_id\": *\"[^\"]*\"' <<<\"$out\" | sed 's/.*\"\\([^\"]*\\)\"$/\\1/'\n"
    "}\n"
    "\n"
    "# COMMAND: sets its positional arguments (args), its options (flags) and\n"
    "# those of them that take a value, with the values (valued).\n"
    "_dagctl_spec() {\n"
    "  case $1 in\n";

static const char script_tail[] =
    "  *) args='' flags='' valued='' ;;\n"
    "  esac\n"
    "}\n"
    "\n"
    "_dagctl() {\n"
    "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
    "  local cmd='' npos=0 i w o v kind args='' flags='' valued=''\n"
    "  local -a _dagctl_globals=() spec=()\n"
    "  # The command is the first word that is no option or option value.\n"
    "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
    "    w=${COMP_WORDS[i]}\n"
    "    if [[ $w == -* ]]; then\n"
    "      for o in $_dagctl_gvalued; do\n"
    "        if [ \"${o%%=*}\" = \"$w\" ]; then\n"
    "          _dagctl_globals+=(\"$w\" \"${COMP_WORDS[i + 1]}\")\n"
    "          i=$((i + 1))\n"
    "          continue 2\n"
    "        fi\n"
    "      done\n"
    "      for o in $valued; do\n"
    "        if [ \"${o%%=*}\" = \"$w\" ]; then\n"
    "          i=$((i + 1))\n"
    "          continue 2\n"
    "        fi\n"
    "      done\n"
    "      case $w in --server=* | --token=* | --config=* | --output=* | -o?*) _dagctl_globals+=(\"$w\") ;; esac\n"
    "      continue\n"
    "    fi\n"
    "    if [ -z \"$cmd\" ]; then\n"
    "      cmd=$w\n"
    "      _dagctl_spec \"$cmd\"\n"
    "    else\n"
    "      npos=$((npos + 1))\n"
    "    fi\n"
    "  done\n"
    "  COMPREPLY=()\n"
    "  # The value of an option.\n"
    "  for o in $_dagctl_gvalued $valued; do\n"
    "    [ \"${o%%=*}\" = \"$prev\" ] || continue\n"
    "    v=${o#*=}\n"
    "    case $v in\n"
    "    FILE)\n"
    "      compopt -o filenames 2>/dev/null\n"
    "      mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
    "      ;;\n"
    "    ?*) mapfile -t COMPREPLY < <(compgen -W \"${v//|/ }\" -- \"$cur\") ;;\n"
    "    esac\n"
    "    return 0\n"
    "  done\n"
    "  if [[ $cur == -* ]]; then\n"
    "    mapfile -t COMPREPLY < <(compgen -W \"$flags $_dagctl_gflags\" -- \"$cur\")\n"
    "    return 0\n"
    "  fi\n"
    "  if [ -z \"$cmd\" ]; then\n"
    "    mapfile -t COMPREPLY < <(compgen -W \"$_dagctl_commands\" -- \"$cur\")\n"
    "    return 0\n"
    "  fi\n"
    "  # A positional argument: what the synopsis names at this place, a\n"
    "  # placeholder in capitals or words to type as they are (a|b).\n"
    "  read -ra spec <<<\"$args\"\n"
    "  kind=${spec[npos]:-}\n"
    "  if [ -z \"$kind\" ] && [ ${#spec[@]} -gt 0 ] && [[ ${spec[-1]} == *... ]]; then kind=${spec[-1]}; fi\n"
    "  kind=${kind%...}\n"
    "  case $kind in\n"
    "  DAG) mapfile -t COMPREPLY < <(compgen -W \"$(_dagctl_dag_ids)\" -- \"$cur\") ;;\n"
    "  FILE | PATH)\n"
    "    compopt -o filenames 2>/dev/null\n"
    "    mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
    "    ;;\n"
    "  COMMAND) mapfile -t COMPREPLY < <(compgen -W \"$_dagctl_commands\" -- \"$cur\") ;;\n"
    "  [a-z]*) mapfile -t COMPREPLY < <(compgen -W \"${kind//|/ }\" -- \"$cur\") ;;\n"
    "  esac\n"
    "  return 0\n"
    "}\n"
    "complete -F _dagctl dagctl\n";

int cli_cmd_completion(cli *c, int argc, char **argv) {
  if (argc != 2) return CLI_USAGE;
  if (strcmp(argv[1], "bash") != 0) {
    fprintf(stderr, "dagctl completion: no completion for \"%s\": only bash\n", argv[1]);
    return CLI_USAGE;
  }
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_puts(&b, script_head);
  for (size_t i = 0; i < cli_n_commands; i++) {
    const cli_command *cmd = &cli_commands[i];
    dagd_buf_printf(&b, "  %s) args='", cmd->name);
    put_args(&b, cmd->args);
    dagd_buf_puts(&b, "' flags='");
    put_flags(&b, cmd->options);
    dagd_buf_puts(&b, "' valued='");
    put_valued(&b, cmd->options);
    dagd_buf_puts(&b, "' ;;\n");
  }
  dagd_buf_puts(&b, script_tail);
  dagd_buf_puts(&b, "_dagctl_commands='");
  for (size_t i = 0; i < cli_n_commands; i++) dagd_buf_printf(&b, "%s%s", i ? " " : "", cli_commands[i].name);
  dagd_buf_puts(&b, "'\n_dagctl_gflags='");
  put_flags(&b, cli_globals);
  dagd_buf_puts(&b, "'\n_dagctl_gvalued='");
  put_valued(&b, cli_globals);
  dagd_buf_puts(&b, "'\n");
  fwrite(b.data, 1, b.len, stdout);
  dagd_buf_close(&b);
  return CLI_OK;
}
