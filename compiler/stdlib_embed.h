/* The standard library's .snn files, embedded at build time by tools/embed.sh. */
#ifndef SNN_STDLIB_EMBED_H
#define SNN_STDLIB_EMBED_H
typedef struct { const char *name; const char *text; } snn_embedded_file;
extern const snn_embedded_file snn_stdlib_files[];
extern const int snn_stdlib_file_count;
#endif
