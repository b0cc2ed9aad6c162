/*  node_redact: the write policy's redaction (node/trust/acl.h, node_acl_policy), applied by the
 *  origin node to a write into a shared scope before the write is stored or sent, so that the
 *  redacted text never leaves the writer's node.
 *
 *  A redactor is a list of patterns: built-in names or POSIX extended regular expressions. It
 *  replaces every match in the data with "[redacted:KIND]", KIND being email, phone, card or
 *  secret for a built-in and pattern for a regular expression. Matches are taken left to right
 *  over the union of all patterns and never overlap: the earliest match wins, at a tie the
 *  longest, at a tie of both the pattern listed first; the search goes on after the match.
 *  Empty matches redact nothing and are skipped (the search goes on one byte further).
 *
 *  Data is bytes, NUL included. Built-ins read ASCII only and treat any other byte, NUL too, as
 *  punctuation. Regular expressions are compiled with REG_EXTENDED | REG_NEWLINE and run by
 *  glibc's regexec with REG_STARTEND, which makes NUL an ordinary byte (glibc's POSIX syntax
 *  sets RE_DOT_NOT_NULL: '.' never matches it, a bracket such as [^ ] does); the byte before
 *  the search position is context for ^, \b, \< and \>, as in one search over the whole data.
 *  REG_NEWLINE: '.' and negated brackets never match a newline, ^ and $ also match at line
 *  boundaries, so "password:.*" ends at the end of its line. engram never calls setlocale: the
 *  C locale, one byte a character. Back-references (\1 to \9) are refused: glibc's cost for
 *  them has no bound. GNU's buffer anchors \` and \' see the bounds of a search window (below),
 *  not of the data: do not use them.
 *
 *  Built-ins (each a scanner written in C, linear in the data):
 *    @email   local@domain: local part of letters, digits and ._%+-; a domain of dot-joined
 *             labels (letters, digits, '-') ending in a top-level domain of two letters or
 *             more. Missed: domains without a dot (user@localhost), IP-literal domains, quoted
 *             local parts, obfuscations ("bob at example dot com").
 *    @phone   International: '+' then 8 to 15 digits in groups joined by one space, '-' or '.',
 *             one group may be in parentheses: +44 20 7946 0958, +1 (555) 123-4567,
 *             +442079460958, +44 (0)20 7946 0958. North American: (NNN) NNN-NNNN (the space
 *             after ')' optional) or NNN-NNN-NNNN with '-', '.' or ' ' between groups, and an
 *             optional leading "1 " or "1-". Never inside a word or a longer number: a
 *             letter or digit next to it, or '-', '.' or ',' and a digit, rejects it. Missed:
 *             national formats outside North America without '+' (020 7946 0958), North
 *             American numbers written without separators (5551234567) or with only seven
 *             digits (555-1234), extensions, vanity letters. Not caught by design: ISO dates
 *             (2024-01-15), times, IP addresses, version numbers, plain numbers.
 *    @card    13 to 19 digits that pass the Luhn check: one unbroken run, or groups joined by
 *             one space or '-' whose first group has 4 digits and the others 3 to 6 (the
 *             printed layouts: 4-4-4-4, 4-6-5, 4-6-4, 4-4-4-4-3). Not inside a word or a
 *             decimal number; within a longer run of groups, the earliest start that gives a
 *             valid number wins, with its longest valid length, so two cards written one after
 *             the other are two matches. Missed: other groupings (41 1111 ...), numbers split
 *             by other characters. A Luhn-valid run of the right length that is not a card
 *             number (1 in 10 random ones) is redacted too.
 *    @secret  Only the secret itself is replaced, so "API_KEY=[redacted:secret]" and
 *             "Authorization: Bearer [redacted:secret]" keep their structure:
 *             - the token after "Bearer" (any case, then spaces or tabs): 16 or more token68
 *               characters (letters, digits, -._~+/) and '=' padding;
 *             - the value of an assignment whose key ends (case ignored, '-' and '.' read as
 *               '_') in api_key, apikey, access_key, secret_key, private_key, token, secret,
 *               password, passwd, passphrase or authorization, written key: value, key=value,
 *               key := value, key => value, "key": "value" or key='value': a quoted value up
 *               to its closing quote or the end of the line, else a run up to a space, quote,
 *               ',', ';', '&', bracket or '<'/'>'; after a "Bearer", "Basic" or "Token" scheme
 *               word the value is the credential that follows it. Values shorter than 8 bytes
 *               are kept (password: none), longer ones go whatever they are
 *               (forgot_password=https://...);
 *             - keys by their prefix, with no letter, digit or '_' just before or after: sk-
 *               (OpenAI, Anthropic sk-ant-; 20 or more letters, digits, '-' and '_' with an
 *               upper-case letter, a lower-case letter and a digit among them), sk_live_,
 *               sk_test_, rk_live_, rk_test_ (Stripe), ghp_, gho_, ghu_, ghs_, ghr_,
 *               github_pat_ (GitHub), glpat- (GitLab), xoxb-, xoxp-, xoxa-, xoxr- (Slack), AKIA
 *               and ASIA then exactly 16 upper-case letters or digits (AWS access key ids),
 *               AIza then 35 characters (Google API keys), hf_ (Hugging Face, mixed as sk-),
 *               npm_ (npm);
 *             - JSON Web Tokens: eyJ..., three base64url segments joined by dots;
 *             - PEM private keys, "-----BEGIN ... PRIVATE KEY-----" through the matching END
 *               line, or to the end of the data when there is none.
 *             Missed: secrets with no key, keyword or known prefix around them (a bare hex or
 *             base64 string), AWS secret access keys outside an assignment, passwords in prose,
 *             unquoted values with spaces, "--token VALUE" flags (no ':' or '='), a keyword more
 *             than 64 bytes before a search position that lies between it and its value.
 *
 *  Bounds. Input and output are at most NODE_REDACT_MAX_BYTES each: a longer input, or an
 *  output that would grow past it (a replacement may be longer than its match: "a" becomes the
 *  18 bytes of "[redacted:pattern]"), fails with ENGRAM_ETOOBIG; the output buffer never grows
 *  past the bound. Work: glibc's regexec tries every start position and runs from each as far
 *  as the pattern could still match, so one unbounded search for "[a-z]+@corp" over a megabyte
 *  of letters costs the square of the input (hours). A user pattern is therefore searched in
 *  windows of 2 * NODE_REDACT_SPAN bytes, taking a match that starts in the first half, which
 *  bounds the search to about 2 * NODE_REDACT_SPAN steps per byte (1 to 2 s per megabyte for
 *  the worst patterns tried, such as "[a-z]+@corp" over letters, on a loaded 2-core machine;
 *  milliseconds for ordinary ones; the built-ins take at most about 0.1 s per megabyte). What that
 * means for matches: a match that fits in NODE_REDACT_SPAN bytes is always found where it starts;
 * one that needs more bytes before the pattern can decide may be found starting later (only the end
 * of a 1000-letter local part before "@corp"); a match that reaches the end of its window is
 * extended by a second search from its start, to at most NODE_REDACT_MAX_MATCH bytes, after which
 * it is cut and the search goes on where it stopped.
 *
 *  Ownership and threads: a redactor is immutable once made; node_redact reads it and may run
 *  in several threads at once.
 */
#ifndef NODE_REDACT_H
#define NODE_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engram/limits.h"

/*  Largest input of node_redact, and largest output, in bytes. */
#define NODE_REDACT_MAX_BYTES ENGRAM_MAX_ENTRY_BYTES
/*  A user pattern's match is always found where it starts if it fits in this many bytes. */
#ifndef NODE_REDACT_SPAN
#define NODE_REDACT_SPAN 128
#endif
/*  Longest match of a user pattern; a longer one is cut here. */
#ifndef NODE_REDACT_MAX_MATCH
#define NODE_REDACT_MAX_MATCH 4096
#endif

typedef struct node_redactor node_redactor_t;

/*  Compiles n patterns into *self_p (the caller owns it and destroys it with
 *  node_redactor_destroy). A pattern is a built-in name ("@email", "@phone", "@card",
 *  "@secret": '@' and letters, digits, '_' or '-' only) or else a POSIX extended regular
 *  expression (so "@[a-z]+" is a regular expression; write "[@]name" for a literal '@' before
 *  a name). n == 0 is allowed: the redactor redacts
 *  nothing. 0; ENGRAM_EINVAL for an empty pattern, an unknown built-in name, a regular
 *  expression that does not compile or uses a back-reference, with the reason and the
 *  pattern's position (from 1) in why (may be NULL when why_len is 0); ENGRAM_ENOMEM. *self_p
 *  is set only on success. */
int node_redactor_new(const char *const *patterns, size_t n, node_redactor_t **self_p, char *why,
                      size_t why_len);
/*  Frees *self_p and sets it to NULL; nothing when it is NULL already. */
void node_redactor_destroy(node_redactor_t **self_p);

/*  Replaces every match in data[0..len) (data may be NULL when len is 0) as the module comment
 *  says. On success *out is a new buffer of *out_len bytes, always allocated, even when
 *  nothing matched (then a copy of the data) or len is 0; the caller frees it with free().
 *  *matches (matches may be NULL) gets the number of replacements. ENGRAM_ETOOBIG when len or
 *  the output would pass NODE_REDACT_MAX_BYTES, ENGRAM_ENOMEM; on error *out is NULL,
 *  *out_len and *matches 0. */
int node_redact(const node_redactor_t *self, const uint8_t *data, size_t len, uint8_t **out,
                size_t *out_len, size_t *matches);

/*  Whether node_redactor_new takes pattern; why as there. For the CLI, before it signs a
 *  policy. */
bool node_redact_pattern_ok(const char *pattern, char *why, size_t why_len);

#endif
