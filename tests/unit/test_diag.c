/* test_diag.c: the diagnostics sink (compiler/diag.c): the exact printed format of errors,
 * notes, warnings and internal errors; the source line and caret (tabs copied so the caret
 * lines up, CR of CRLF dropped, NUL shown as a space); locations without a file, without a
 * line, past the end of the text, or in a file whose text was never registered; counting. */
#include "common.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "unit_util.h"

static char *printed(const snn_diag *d) { return unit_diag_text(d); }

static void test_error_with_caret_and_note(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    const char *file = snn_intern_cstr(a, "m.snn");
    const char *text = "model m {\n\th = leaky(x)\r\n}\n";
    snn_diag_add_source(d, file, text, strlen(text));
    snn_error(d, ((snn_loc){file, 2, 6}), "unknown name '%s'", "leaky");
    snn_note(d, ((snn_loc){file, 1, 9}), "the model starts here");
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 1);   /* notes are not errors */
    char *out = printed(d);
    CU_ASSERT_STRING_EQUAL(out, "m.snn:2:6: error: unknown name 'leaky'\n"
                                " \th = leaky(x)\n"
                                " \t    ^\n"
                                "m.snn:1:9: note: the model starts here\n");
    free(out);
    snn_arena_free(a);
}

static void test_locations_without_source(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    const char *file = snn_intern_cstr(a, "short.snn");
    snn_diag_add_source(d, file, "one line", 8);
    snn_error(d, ((snn_loc){NULL, 0, 0}), "cannot open '%s'", "x.snn");
    snn_error(d, ((snn_loc){file, 0, 0}), "whole-file problem");
    snn_error(d, ((snn_loc){file, 7, 1}), "past the end");               /* no line to show */
    snn_error(d, ((snn_loc){snn_intern_cstr(a, "other.snn"), 3, 4}), "unregistered file");
    snn_error(d, ((snn_loc){file, 1, 50}), "column past the end of the line");
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 5);
    char *out = printed(d);
    CU_ASSERT_STRING_EQUAL(out, "snnc: error: cannot open 'x.snn'\n"
                                "short.snn: error: whole-file problem\n"
                                "short.snn:7:1: error: past the end\n"
                                "other.snn:3:4: error: unregistered file\n"
                                "short.snn:1:50: error: column past the end of the line\n"
                                " one line\n"
                                "         ^\n");
    free(out);
    snn_arena_free(a);
}

static void test_kinds(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    const char *file = snn_intern_cstr(a, "k.snn");
    const char text[] = "a\0b = 1";
    snn_diag_add_source(d, file, text, sizeof text - 1);
    snn_diag_report(d, SNN_DIAG_WARNING, ((snn_loc){file, 1, 3}), "just a warning");
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_internal_error(d, ((snn_loc){file, 1, 1}), "bad %s", "state");
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 1);   /* a compiler bug still fails the compile */
    char *out = printed(d);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "k.snn:1:3: warning: just a warning\n a b = 1\n   ^\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "k.snn:1:1: internal error: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "test_diag.c:"));   /* the C place of the bug */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ": bad state\n"));
    free(out);
    snn_arena_free(a);
}

static void test_many_messages(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    for (int i = 0; i < 1000; i++) snn_error(d, ((snn_loc){NULL, 0, 0}), "error %d", i);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 1000);
    char *out = printed(d);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "snnc: error: error 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "snnc: error: error 999\n"));
    free(out);
    snn_arena_free(a);
}

void test_diag_register(void) {
    CU_pSuite s = CU_add_suite("diag", NULL, NULL);
    CU_add_test(s, "error, source line, caret under a tab, note", test_error_with_caret_and_note);
    CU_add_test(s, "locations without a file, line or source", test_locations_without_source);
    CU_add_test(s, "warnings and internal errors", test_kinds);
    CU_add_test(s, "messages are kept in order, all of them", test_many_messages);
}
