#!/bin/sh
# Writes the parser's %token declarations from compiler/tokens.def into the grammar:
#   tools/tokens_y.sh compiler/tokens.def compiler/parse.y > build/gen/parse.y
# The line "%tokens-from-def" in parse.y is replaced by one "%token <tok> T_NAME NUMBER "alias"" per
# table entry, numbered as the C enum snn_tok of lex.h (258 + position; EOF is 0), so the
# lexer's kinds are the parser's token numbers. Keywords and operators are quoted in messages
# ("unexpected '}'"), the others are described ("unexpected identifier").
def=$1; y=$2
awk -v def="$def" '
  BEGIN {
    n = 0
    while ((getline line < def) > 0) {
      if (line !~ /^TOK\(/) continue
      sub(/^TOK\( */, "", line); sub(/\) *$/, "", line)
      name = line; sub(/ *,.*/, "", name)
      spell = line; sub(/^[^"]*"/, "", spell); sub(/".*$/, "", spell)
      cls = line; sub(/^.*, */, "", cls)
      num = (name == "EOF") ? 0 : 258 + n
      alias = (cls == "KEYWORD" || cls == "PUNCT") ? "'\''" spell "'\''" : spell
      decl[n++] = sprintf("%%token <tok> T_%s %d \"%s\"", name, num, alias)
    }
  }
  $0 == "%tokens-from-def" { for (i = 0; i < n; i++) print decl[i]; next }
  { print }
' "$y"
