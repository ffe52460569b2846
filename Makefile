# snnc build. Sources are found by wildcard so adding a file needs no edit here.
# build.sh is the entry point (it installs packages first); `make` alone works once they are there.
CC        ?= cc
LLVM_CONFIG ?= llvm-config-16
B         := build
CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -MMD -MP -Icompiler -I$(B)/gen -Iruntime
LLVM_CFLAGS := $(shell $(LLVM_CONFIG) --cflags 2>/dev/null | sed 's/-std=[^ ]*//')
LLVM_LIBS := $(shell $(LLVM_CONFIG) --ldflags --libs core analysis target passes native 2>/dev/null) $(shell $(LLVM_CONFIG) --system-libs 2>/dev/null)
RT_LIBS   := -lopenblas -lz -lm -fopenmp

COMPILER_SRC := $(filter-out compiler/main.c,$(wildcard compiler/*.c compiler/*/*.c))
COMPILER_OBJ := $(COMPILER_SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/lex.o $(B)/obj/gen/parse.o $(B)/obj/gen/stdlib_embed.o
RUNTIME_SRC  := $(wildcard runtime/*.c)
RUNTIME_OBJ  := $(RUNTIME_SRC:%.c=$(B)/obj/%.o)
UNIT_SRC     := $(wildcard tests/unit/*.c)
UNIT_OBJ     := $(UNIT_SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/unit_registry.o
STDLIB       := $(sort $(wildcard stdlib/*.snn))

all: $(B)/snnc $(B)/libsnnrt.a $(B)/unit_tests

$(B)/snnc: $(B)/obj/compiler/main.o $(B)/libsnnc.a
	$(CC) -o $@ $^ $(LLVM_LIBS) -lm

$(B)/libsnnc.a: $(COMPILER_OBJ)
	@rm -f $@; ar rcs $@ $^

$(B)/libsnnrt.a: $(RUNTIME_OBJ)
	@rm -f $@; ar rcs $@ $^

$(B)/unit_tests: $(UNIT_OBJ) $(B)/libsnnc.a $(B)/libsnnrt.a
	$(CC) -o $@ $(UNIT_OBJ) $(B)/libsnnc.a $(B)/libsnnrt.a -lcunit $(LLVM_LIBS) $(RT_LIBS)

# LLVM headers only in compiler/codegen (CONVENTIONS.md).
$(B)/obj/compiler/codegen/%.o: compiler/codegen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LLVM_CFLAGS) -c $< -o $@

$(B)/obj/runtime/%.o: runtime/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O3 -march=x86-64-v3 -fopenmp -c $< -o $@

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/obj/gen/%.o: $(B)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-function -c $< -o $@

$(B)/gen/lex.c: compiler/lex.re | $(B)/gen/parse.c
	@mkdir -p $(dir $@)
	re2c -W --no-generation-date -o $@ $<

# The grammar gets its %token declarations from compiler/tokens.def (one table for all tokens).
$(B)/gen/parse.y: compiler/parse.y compiler/tokens.def tools/tokens_y.sh
	@mkdir -p $(dir $@)
	sh tools/tokens_y.sh compiler/tokens.def compiler/parse.y > $@

$(B)/gen/parse.c: $(B)/gen/parse.y
	@mkdir -p $(dir $@)
	bison -Wall -Werror --defines=$(B)/gen/parse.h -o $@ $<

$(B)/gen/parse.h: $(B)/gen/parse.c

$(B)/gen/stdlib_embed.c: $(STDLIB) tools/embed.sh
	@mkdir -p $(dir $@)
	sh tools/embed.sh $(STDLIB) > $@

$(B)/gen/unit_registry.c: $(UNIT_SRC) tools/unit_registry.sh
	@mkdir -p $(dir $@)
	sh tools/unit_registry.sh $(UNIT_SRC) > $@

# Every compiler object may include the generated parser header.
$(COMPILER_OBJ) $(B)/obj/compiler/main.o $(UNIT_OBJ): $(B)/gen/parse.h

clean:
	rm -rf $(B)

.PHONY: all clean
-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
