/* parse.y: the .snn grammar (Bison, pure, LALR(1), no conflicts).
 *
 * Grammar actions only build AST nodes (ast.h); every check that needs more than the shape
 * of the text is sema's. The token declarations come from tokens.def: tools/tokens_y.sh
 * replaces the %tokens-from-def line with them, numbered as the lexer's snn_tok, so yylex
 * hands the lexer's kinds to the parser unchanged. Every token's semantic value is its
 * snn_token (with its location); node locations are the location of the token that names the
 * construct (a definition's name, a binary expression's operator, a call's callee).
 *
 * Newlines are not tokens: items and statements are recognized by their first token, and a
 * ';' may end any of them. Soft keywords (input, output, encode, surrogate, state, step, out,
 * grad) start items in their own blocks but can still be used as ordinary names elsewhere
 * (`step(input)`, `surrogate = atan()`), through the `name` rule.
 *
 * Errors: Bison's detailed messages ("unexpected '}', expecting identifier"), plus a note at
 * the unclosed bracket when the parser expected its closer or met the end of the file
 * ("'}' expected to close 'model' at line 3"), and when a keyword that only starts a
 * top-level item (model, train, neuron, def, ...) appears inside a block. The yylex wrapper
 * keeps the stack of open brackets for that. Error recovery resumes at the next item of a
 * model, train block, neuron step or the file, so several syntax errors can be reported in one
 * run; a second error on the line of the previous one, or on the line of (or after) a lexical
 * error, is taken as a consequence of it and not reported. A stray 'else' is named as such, and
 * the yylex wrapper drops its '{...}' so the enclosing block's '}' still closes that block.
 */
%code requires {
#include "ast.h"
#include "lex.h"
typedef struct snn_parser snn_parser;
}

%code provides {
/* An open bracket, for "expected '}' to close 'model' at line 3" notes. */
typedef struct {
    snn_tok kind;
    snn_loc loc;
    const char *owner;      /* the keyword that opened the block ("model"), or NULL */
    snn_loc owner_loc;
} snn_open_bracket;

struct snn_parser {
    snn_lexer lx;
    snn_arena *a;
    snn_diag *d;
    snn_ast *result;
    int syntax_errors;
    snn_open_bracket *open; int n_open, cap_open;
    const char *last_kw; snn_loc last_kw_loc;
    snn_token last;         /* the token most recently handed to the parser */
    snn_tok prev_kind;      /* the kind of the token before it */
    bool skip_block;        /* drop a '{...}' that comes next (the block of a stray 'else') */
    int32_t last_error_line;    /* line of the latest reported syntax error */
};
}

%code {
#include <stdlib.h>
#include <string.h>

#define YYMAXDEPTH 2000
static int yylex(YYSTYPE *lval, YYLTYPE *lloc, snn_parser *p);
static void yyerror(YYLTYPE *lloc, snn_parser *p, const char *msg);

#define NODE(kind, loc) snn_ast_new(p->a, SNN_AST_##kind, (loc))
#define PUSH(list, node) snn_ast_list_push(p->a, &(list), (node))

static snn_ast *binary(snn_parser *p, snn_binop op, snn_token optok, snn_ast *l, snn_ast *r) {
    snn_ast *n = NODE(BINARY, optok.loc);
    n->bin.op = op; n->bin.lhs = l; n->bin.rhs = r;
    return n;
}
static snn_ast *definition(snn_parser *p, snn_ast_kind kind, snn_token name) {
    snn_ast *n = snn_ast_new(p->a, kind, name.loc);
    n->name = name.id;
    return n;
}
static snn_ast_list empty_list(void) { return (snn_ast_list){0}; }
}

%define api.pure full
%locations
%define parse.error detailed
%expect 0
%param {snn_parser *p}

%union {
    snn_token tok;
    snn_ast *node;
    snn_ast_list list;
}

%tokens-from-def

%type <node> item import surrogate neuron func builtin model train param state stmt if_stmt
%type <node> model_item setting expr postfix primary arg ident out_name default_opt
%type <list> items params_opt param_list states stmts else_opt model_items settings
%type <list> expr_list args_opt args name_list out_list
%type <tok> name type_opt learn_opt

%right T_QUESTION T_COLON
%left T_OROR
%left T_ANDAND
%nonassoc T_LT T_LE T_GT T_GE T_EQ T_NE
%left T_PLUS T_MINUS
%left T_STAR T_SLASH
%precedence UNARY
%right T_CARET

%%

/* unit: item* */
unit
    : items                 { (void)yynerrs;  /* counted in yyerror; keeps clang's -Wunused quiet */
                              p->result = NODE(UNIT, ((snn_loc){p->lx.file, 1, 1}));
                              p->result->unit.file = p->lx.file; p->result->unit.items = $1; }
    ;

items
    : %empty                { $$ = empty_list(); }
    | items item            { $$ = $1; if ($2) PUSH($$, $2); }
    | items error           { $$ = $1; }
    ;

item
    : import                { $$ = $1; }
    | surrogate             { $$ = $1; }
    | neuron                { $$ = $1; }
    | func                  { $$ = $1; }
    | builtin               { $$ = $1; }
    | model                 { $$ = $1; }
    | train                 { $$ = $1; }
    | T_SEMI                { $$ = NULL; }
    ;

/* import: 'import' STRING */
import
    : T_IMPORT T_STRING     { $$ = NODE(IMPORT, $2.loc); $$->str = $2.str; }
    ;

/* surrogate: 'surrogate' NAME params? '{' 'grad' '(' name ')' '=' expr ';'? '}' */
surrogate
    : T_SURROGATE T_IDENT params_opt T_LBRACE T_GRAD T_LPAREN name T_RPAREN T_ASSIGN expr semi_opt T_RBRACE
                            { $$ = definition(p, SNN_AST_SURROGATE, $2); $$->def.params = $3;
                              $$->def.var = $7.id; $$->def.body = $10; }
    ;

/* neuron: 'neuron' NAME params? '{' state* 'step' '(' name ')' '{' stmt* '}' 'out' names '}' */
neuron
    : T_NEURON T_IDENT params_opt T_LBRACE states T_STEP T_LPAREN name T_RPAREN T_LBRACE stmts T_RBRACE T_OUT out_list semi_opt T_RBRACE
                            { $$ = definition(p, SNN_AST_NEURON, $2); $$->def.params = $3;
                              $$->def.states = $5; $$->def.var = $8.id; $$->def.step_loc = $6.loc;
                              $$->def.step = $11; $$->def.outs = $14; }
    ;

/* func: 'def' NAME '(' params ')' '=' expr */
func
    : T_DEF T_IDENT T_LPAREN param_list T_RPAREN T_ASSIGN expr
                            { $$ = definition(p, SNN_AST_FUNC, $2); $$->def.params = $4; $$->def.body = $7; }
    | T_DEF T_IDENT T_LPAREN T_RPAREN T_ASSIGN expr
                            { $$ = definition(p, SNN_AST_FUNC, $2); $$->def.body = $6; }
    ;

/* builtin: 'builtin' KIND NAME params? */
builtin
    : T_BUILTIN T_IDENT T_IDENT params_opt
                            { $$ = definition(p, SNN_AST_BUILTIN, $3); $$->def.kind_word = $2.id;
                              $$->def.params = $4; }
    ;

params_opt
    : %empty                        { $$ = empty_list(); }
    | T_LPAREN T_RPAREN             { $$ = empty_list(); }
    | T_LPAREN param_list T_RPAREN  { $$ = $2; }
    ;

param_list
    : param                         { $$ = empty_list(); $1->param.index = 0; PUSH($$, $1); }
    | param_list T_COMMA param      { $$ = $1; $3->param.index = $$.n; PUSH($$, $3); }
    ;

/* param: ('learn' ('[' IDENT ']')?)? name (':' TYPE)? ('=' expr)? */
param
    : learn_opt name type_opt default_opt
                            { $$ = NODE(PARAM, $2.loc); $$->name = $2.id;
                              $$->param.learn = $1.kind == SNN_TOK_LEARN
                                  ? ($1.id ? SNN_LEARN_PER_NEURON : SNN_LEARN_SCALAR) : SNN_LEARN_NONE;
                              $$->str = $1.id;
                              $$->param.type_name = $3.id; $$->param.def_value = $4; }
    ;

learn_opt
    : %empty                        { memset(&$$, 0, sizeof $$); }
    | T_LEARN                       { $$ = $1; $$.id = NULL; }
    | T_LEARN T_LBRACKET T_IDENT T_RBRACKET
                                    { $$ = $1; $$.id = $3.id; $$.loc = $3.loc; }
    ;

type_opt
    : %empty                        { memset(&$$, 0, sizeof $$); }
    | T_COLON T_IDENT               { $$ = $2; }
    ;

default_opt
    : %empty                        { $$ = NULL; }
    | T_ASSIGN expr                 { $$ = $2; }
    ;

states
    : %empty                        { $$ = empty_list(); }
    | states state                  { $$ = $1; $2->state.index = $$.n; PUSH($$, $2); }
    ;

/* state: 'state' name '=' expr */
state
    : T_STATE name T_ASSIGN expr semi_opt
                            { $$ = NODE(STATE, $2.loc); $$->name = $2.id; $$->state.init = $4; }
    ;

stmts
    : %empty                        { $$ = empty_list(); }
    | stmts stmt                    { $$ = $1; PUSH($$, $2); }
    | stmts error                   { $$ = $1; }
    ;

/* stmt: 'let' name '=' expr | name '=' expr | if_stmt */
stmt
    : T_LET name T_ASSIGN expr semi_opt
                            { $$ = NODE(LET, $2.loc); $$->name = $2.id; $$->stmt.value = $4; }
    | name T_ASSIGN expr semi_opt
                            { $$ = NODE(ASSIGN, $1.loc); $$->name = $1.id; $$->stmt.value = $3; }
    | if_stmt               { $$ = $1; }
    ;

/* if_stmt: 'if' expr '{' stmt* '}' ('else' (if_stmt | '{' stmt* '}'))? */
if_stmt
    : T_IF expr T_LBRACE stmts T_RBRACE else_opt
                            { $$ = NODE(IF, $1.loc); $$->ifs.cond = $2; $$->ifs.then_ = $4; $$->ifs.else_ = $6; }
    ;

else_opt
    : %empty                                { $$ = empty_list(); }
    | T_ELSE T_LBRACE stmts T_RBRACE        { $$ = $3; }
    | T_ELSE if_stmt                        { $$ = empty_list(); PUSH($$, $2); }
    ;

out_list
    : out_name                      { $$ = empty_list(); PUSH($$, $1); }
    | out_list T_COMMA out_name     { $$ = $1; PUSH($$, $3); }
    ;

out_name
    : name                          { $$ = NODE(IDENT, $1.loc); $$->name = $1.id; }
    ;

/* model: 'model' NAME '{' model_item* '}' */
model
    : T_MODEL T_IDENT T_LBRACE model_items T_RBRACE
                            { $$ = definition(p, SNN_AST_MODEL, $2); $$->model.items = $4; }
    ;

model_items
    : %empty                        { $$ = empty_list(); }
    | model_items model_item        { $$ = $1; PUSH($$, $2); }
    | model_items error             { $$ = $1; }
    ;

/* model_item: 'input' name '[' exprs ']' | 'encode' name '=' expr | name '=' expr
 *           | 'output' names */
model_item
    : T_INPUT name T_LBRACKET expr_list T_RBRACKET semi_opt
                            { $$ = NODE(INPUT, $2.loc); $$->name = $2.id; $$->input.dims = $4; }
    | T_ENCODE name T_ASSIGN expr semi_opt
                            { $$ = NODE(ENCODE, $2.loc); $$->name = $2.id; $$->encode.value = $4; }
    | name T_ASSIGN expr semi_opt
                            { $$ = NODE(LAYER, $1.loc); $$->name = $1.id; $$->layer.value = $3; }
    | T_OUTPUT name_list semi_opt
                            { $$ = NODE(OUTPUT, $1.loc); $$->output.names = $2; }
    ;

/* train: 'train' MODEL '{' (KEY expr)* '}' */
train
    : T_TRAIN T_IDENT T_LBRACE settings T_RBRACE
                            { $$ = definition(p, SNN_AST_TRAIN, $2); $$->train.settings = $4; }
    ;

settings
    : %empty                        { $$ = empty_list(); }
    | settings setting              { $$ = $1; PUSH($$, $2); }
    | settings error                { $$ = $1; }
    ;

setting
    : name expr semi_opt    { $$ = NODE(SETTING, $1.loc); $$->name = $1.id; $$->setting.value = $2; }
    ;

name_list
    : ident                         { $$ = empty_list(); PUSH($$, $1); }
    | name_list T_COMMA ident       { $$ = $1; PUSH($$, $3); }
    ;

ident
    : name                          { $$ = NODE(IDENT, $1.loc); $$->name = $1.id; }
    ;

/* A name: an identifier or a soft keyword (one that only starts items in its own block). */
name
    : T_IDENT       { $$ = $1; }
    | T_INPUT       { $$ = $1; }
    | T_OUTPUT      { $$ = $1; }
    | T_ENCODE      { $$ = $1; }
    | T_SURROGATE   { $$ = $1; }
    | T_STATE       { $$ = $1; }
    | T_STEP        { $$ = $1; }
    | T_OUT         { $$ = $1; }
    | T_GRAD        { $$ = $1; }
    ;

semi_opt
    : %empty
    | T_SEMI
    ;

/* expr: ternary, logical, comparison, arithmetic, unary, power, postfix (by precedence) */
expr
    : expr T_QUESTION expr T_COLON expr
                            { $$ = NODE(SELECT, $2.loc); $$->sel.cond = $1; $$->sel.a = $3; $$->sel.b = $5; }
    | expr T_OROR expr      { $$ = binary(p, SNN_BIN_OR, $2, $1, $3); }
    | expr T_ANDAND expr    { $$ = binary(p, SNN_BIN_AND, $2, $1, $3); }
    | expr T_LT expr        { $$ = binary(p, SNN_BIN_LT, $2, $1, $3); }
    | expr T_LE expr        { $$ = binary(p, SNN_BIN_LE, $2, $1, $3); }
    | expr T_GT expr        { $$ = binary(p, SNN_BIN_GT, $2, $1, $3); }
    | expr T_GE expr        { $$ = binary(p, SNN_BIN_GE, $2, $1, $3); }
    | expr T_EQ expr        { $$ = binary(p, SNN_BIN_EQ, $2, $1, $3); }
    | expr T_NE expr        { $$ = binary(p, SNN_BIN_NE, $2, $1, $3); }
    | expr T_PLUS expr      { $$ = binary(p, SNN_BIN_ADD, $2, $1, $3); }
    | expr T_MINUS expr     { $$ = binary(p, SNN_BIN_SUB, $2, $1, $3); }
    | expr T_STAR expr      { $$ = binary(p, SNN_BIN_MUL, $2, $1, $3); }
    | expr T_SLASH expr     { $$ = binary(p, SNN_BIN_DIV, $2, $1, $3); }
    | expr T_CARET expr     { $$ = binary(p, SNN_BIN_POW, $2, $1, $3); }
    | T_MINUS expr %prec UNARY
                            { $$ = NODE(UNARY, $1.loc); $$->un.op = SNN_UN_NEG; $$->un.operand = $2; }
    | T_BANG expr %prec UNARY
                            { $$ = NODE(UNARY, $1.loc); $$->un.op = SNN_UN_NOT; $$->un.operand = $2; }
    | postfix               { $$ = $1; }
    ;

postfix
    : primary               { $$ = $1; }
    | postfix T_DOT name    { $$ = NODE(MEMBER, $3.loc); $$->name = $3.id; $$->member.object = $1; }
    ;

primary
    : T_INT                 { $$ = NODE(NUM, $1.loc); $$->num.value = $1.num; $$->num.ival = $1.ival;
                              $$->num.is_int = true; }
    | T_FLOAT               { $$ = NODE(NUM, $1.loc); $$->num.value = $1.num; }
    | T_STRING              { $$ = NODE(STR, $1.loc); $$->str = $1.str; }
    | T_TRUE                { $$ = NODE(BOOL, $1.loc); $$->cval = 1; }
    | T_FALSE               { $$ = NODE(BOOL, $1.loc); $$->cval = 0; }
    | name                  { $$ = NODE(IDENT, $1.loc); $$->name = $1.id; }
    | name T_LPAREN args_opt T_RPAREN
                            { $$ = NODE(CALL, $1.loc); $$->name = $1.id; $$->call.args = $3; }
    | T_LPAREN expr T_RPAREN
                            { $$ = $2; }
    | T_LPAREN expr T_COMMA expr_list T_RPAREN
                            { $$ = NODE(TUPLE, $1.loc); PUSH($$->tuple.elems, $2);
                              for (int i = 0; i < $4.n; i++) PUSH($$->tuple.elems, $4.items[i]); }
    ;

expr_list
    : expr                          { $$ = empty_list(); PUSH($$, $1); }
    | expr_list T_COMMA expr        { $$ = $1; PUSH($$, $3); }
    ;

args_opt
    : %empty                        { $$ = empty_list(); }
    | args                          { $$ = $1; }
    ;

args
    : arg                           { $$ = empty_list(); PUSH($$, $1); }
    | args T_COMMA arg              { $$ = $1; PUSH($$, $3); }
    ;

/* arg: expr | name '=' expr */
arg
    : expr                          { $$ = $1; }
    | name T_ASSIGN expr            { $$ = NODE(ARG, $1.loc); $$->name = $1.id; $$->arg.value = $3; }
    ;

%%

static snn_tok closer_of(snn_tok open) {
    return open == SNN_TOK_LPAREN ? SNN_TOK_RPAREN
         : open == SNN_TOK_LBRACKET ? SNN_TOK_RBRACKET : SNN_TOK_RBRACE;
}

/* The lexer, plus bookkeeping for messages: the open-bracket stack, and the last keyword
 * that can own a '{' block. */
static int yylex(YYSTYPE *lval, YYLTYPE *lloc, snn_parser *p) {
    snn_token t = snn_lex_next(&p->lx);
    if (p->skip_block) {        /* already reported; its '}' would close the enclosing block */
        p->skip_block = false;
        p->last_kw = NULL;
        for (int depth = t.kind == SNN_TOK_LBRACE; depth > 0 && t.kind != SNN_TOK_EOF;) {
            t = snn_lex_next(&p->lx);
            depth += t.kind == SNN_TOK_LBRACE ? 1 : t.kind == SNN_TOK_RBRACE ? -1 : 0;
            if (depth == 0) t = snn_lex_next(&p->lx);
        }
    }
    bool in_parens = p->n_open > 0 && p->open[p->n_open - 1].kind != SNN_TOK_LBRACE;
    switch (t.kind) {
    case SNN_TOK_SURROGATE: case SNN_TOK_STEP:
        /* soft keywords: inside (...) or [...] they are names (`surrogate = atan()`) */
        if (in_parens) break;
        /* fall through */
    case SNN_TOK_NEURON: case SNN_TOK_MODEL: case SNN_TOK_TRAIN: case SNN_TOK_IF: case SNN_TOK_ELSE:
        p->last_kw = t.id; p->last_kw_loc = t.loc;
        break;
    case SNN_TOK_LPAREN: case SNN_TOK_LBRACKET: case SNN_TOK_LBRACE: {
        snn_open_bracket b = {t.kind, t.loc, NULL, {0}};
        if (t.kind == SNN_TOK_LBRACE && p->last_kw) {
            b.owner = p->last_kw; b.owner_loc = p->last_kw_loc;
            p->last_kw = NULL;
        }
        SNN_PUSH(p->open, p->n_open, p->cap_open, b);
        break;
    }
    case SNN_TOK_RPAREN: case SNN_TOK_RBRACKET: case SNN_TOK_RBRACE:
        if (p->n_open > 0 && closer_of(p->open[p->n_open - 1].kind) == t.kind) p->n_open--;
        if (t.kind == SNN_TOK_RBRACE) p->last_kw = NULL;
        break;
    default:
        break;
    }
    p->prev_kind = p->last.kind;
    p->last = t;
    lval->tok = t;
    lloc->first_line = lloc->last_line = t.loc.line;
    lloc->first_column = lloc->last_column = t.loc.col;
    return t.kind == SNN_TOK_EOF ? 0 : (int)t.kind;
}

static void yyerror(YYLTYPE *lloc, snn_parser *p, const char *msg) {
    snn_loc loc = {p->lx.file, lloc->first_line, lloc->first_column};
    p->syntax_errors++;
    if (strcmp(msg, "memory exhausted") == 0) {
        snn_error(p->d, loc, "program is nested too deeply");
        return;
    }
    const char *m = strncmp(msg, "syntax error, ", 14) == 0 ? msg + 14 : msg;
    /* Follow-on errors: a second syntax error on the line of the previous one, or one right
     * after a lexical error (an unterminated string swallowed the ')'), is a consequence of
     * the first; the file is rejected anyway, and the first message is the useful one. */
    if ((p->last_error_line && loc.line == p->last_error_line) ||
        (p->lx.last_error_line && loc.line - p->lx.last_error_line <= 1 && loc.line >= p->lx.last_error_line))
        return;
    p->last_error_line = loc.line;
    if (p->last.kind == SNN_TOK_ELSE && strcmp(m, "unexpected 'else'") == 0) {
        snn_error(p->d, loc, "'else' without an 'if': it must follow the '}' of an 'if' block");
        p->skip_block = true;
    }
    else if (p->n_open == 0 && loc.col == 1 && p->last.kind == SNN_TOK_IDENT && !strstr(m, "expecting"))
        /* a line that starts with a name at the top level: Bison has too many choices to list */
        snn_error(p->d, loc, "%s, expecting an item: import, surrogate, neuron, def, model or train", m);
    else
        snn_error(p->d, loc, "%s", m);
    /* Name the unclosed bracket when its closer was expected or the file ended. The bracket
     * that the offending token itself opened (if any) does not count. */
    int top = p->n_open - 1;
    if (top >= 0 && p->open[top].loc.line == p->last.loc.line && p->open[top].loc.col == p->last.loc.col)
        top--;
    if (top < 0) return;
    const snn_open_bracket *b = &p->open[top];
    const char *closer = snn_tok_spelling(closer_of(b->kind));
    char want[16];
    snprintf(want, sizeof want, "'%s'", closer);
    /* A keyword that only starts a top-level item (model, train, ...) inside an open '{'
     * means that block's '}' is missing, whatever Bison expected there; so, mostly, does a
     * block item keyword that the parser took for a name. */
    snn_tok k = p->last.kind, pk = p->prev_kind;
    bool item_kw = k == SNN_TOK_OUT || k == SNN_TOK_STATE || k == SNN_TOK_STEP || k == SNN_TOK_INPUT ||
                   k == SNN_TOK_OUTPUT || k == SNN_TOK_ENCODE;
    bool after_item_kw = k == SNN_TOK_IDENT && (pk == SNN_TOK_OUT || pk == SNN_TOK_STATE || pk == SNN_TOK_INPUT ||
                                                pk == SNN_TOK_OUTPUT || pk == SNN_TOK_ENCODE);
    bool top_kw = b->kind == SNN_TOK_LBRACE &&
                  (k == SNN_TOK_MODEL || k == SNN_TOK_TRAIN || k == SNN_TOK_NEURON || k == SNN_TOK_DEF ||
                   k == SNN_TOK_BUILTIN || k == SNN_TOK_IMPORT ||
                   /* an item keyword of a block (`out spk`, `state v`, `output o`) met where a
                    * statement was expected: the block before it was not closed */
                   item_kw || after_item_kw);
    if (p->last.kind != SNN_TOK_EOF && !top_kw && !strstr(m, want)) return;
    if (b->owner)
        snn_note(p->d, b->loc, "'%s' expected to close '%s' at line %d", closer, b->owner,
                 (int)b->owner_loc.line);
    else
        snn_note(p->d, b->loc, "'%s' expected to close this '%s'", closer, snn_tok_spelling(b->kind));
}

snn_ast *snn_parse(snn_arena *a, snn_diag *d, const char *file, const char *text, size_t len) {
    snn_parser p;
    memset(&p, 0, sizeof p);
    p.a = a;
    p.d = d;
    snn_lexer_init(&p.lx, a, d, file, text, len);
    int rc = yyparse(&p);
    free(p.open);
    if (rc != 0 || p.syntax_errors || p.lx.errors) return NULL;
    return p.result;
}
