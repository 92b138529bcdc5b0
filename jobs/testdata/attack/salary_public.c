#define PRIVATE_KEYS 0
#include "salary.inc"
