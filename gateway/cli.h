/*
 * journeygate — store commands of the command line (customer, export). They open
 * the live store directly (LMDB allows readers and writers beside a running gateway).
 */
#ifndef GW_CLI_H
#define GW_CLI_H

/** `journeygate customer show ID|EMAIL [--json]` and `journeygate customer delete ID`. Returns the exit code. */
int cli_customer(int argc, char **argv);

/** `journeygate export customers --format ndjson|csv`. Returns the exit code. */
int cli_export(int argc, char **argv);

/** `journeygate audit verify` and `journeygate audit tail [-n N] [--json]`. Returns the exit code. */
int cli_audit(int argc, char **argv);

/** `journeygate policy explain --config F (--route NAME | --path P) [--customer ID | --email E]`. */
int cli_policy(int argc, char **argv);

/** `journeygate journey ID|EMAIL [--since MS] [--json]`. */
int cli_journey(int argc, char **argv);

#endif
