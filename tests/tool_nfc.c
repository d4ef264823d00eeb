// tool_nfc.c: NFC-normalizes strings for tests/test_nfc.sh, which compares the result with
// Python's unicodedata.normalize('NFC', ...).
// usage: tool_nfc < CASES > RESULTS
// Each input line is one string as space-separated hexadecimal code points (an empty line
// is the empty string); each output line is its NFC form the same way. The first output
// line is "unicode VERSION" (the version of the tables compiled in).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/tokenizer.h"

static size_t put_utf8(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | (cp >> 6)); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12)); o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18)); o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

int main(void) {
    static char line[1 << 16];
    static uint8_t text[1 << 16];
    printf("unicode %s\n", mxp_unicode_version);
    long lineno = 0;
    while (fgets(line, sizeof line, stdin)) {
        lineno++;
        size_t n = 0;
        char *p = line, *end;
        for (;;) {
            unsigned long cp = strtoul(p, &end, 16);
            if (end == p) break;
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || n + 4 > sizeof text) {
                fprintf(stderr, "tool_nfc: line %ld: bad code point %lX\n", lineno, cp);
                return 2;
            }
            n += put_utf8(text + n, (uint32_t)cp);
            p = end;
        }
        while (*p == ' ' || *p == '\n' || *p == '\r') p++;
        if (*p) {
            fprintf(stderr, "tool_nfc: line %ld: junk \"%.20s\"\n", lineno, p);
            return 2;
        }
        uint8_t *out;
        size_t on;
        mxp_err err;
        if (mxp_utf8_nfc(text, n, &out, &on, &err)) {
            fprintf(stderr, "tool_nfc: line %ld: %s\n", lineno, err.msg);
            return 1;
        }
        // the quick check must never call a string NFC that normalization changes
        if (mxp_utf8_nfc_quick(text, n) && (on != n || memcmp(out, text, n))) {
            fprintf(stderr, "tool_nfc: line %ld: the quick check passed a string NFC changes\n", lineno);
            return 1;
        }
        const char *sep = "";
        for (size_t i = 0; i < on;) {
            uint32_t cp;
            int k = mxp_utf8_decode(out + i, on - i, &cp);
            if (!k) {
                fprintf(stderr, "tool_nfc: line %ld: NFC wrote invalid UTF-8\n", lineno);
                return 1;
            }
            printf("%s%04X", sep, (unsigned)cp);
            sep = " ";
            i += (size_t)k;
        }
        putchar('\n');
        free(out);
    }
    return 0;
}
