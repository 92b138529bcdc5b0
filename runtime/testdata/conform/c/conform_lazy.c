/* The C conformance program with lazy columns: each column is copied in
 * when cove_column_get first returns it. */
#define COVE_LAZY_COLUMNS
#include "conform.c"
