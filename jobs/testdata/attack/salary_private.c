#define PRIVATE_KEYS 1
#include "salary.inc"
