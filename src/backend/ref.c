/* placeholder: replaced by the reference backend */
#include "peerless/backend.h"
const pl_backend *pl_backend_ref(void) { return NULL; }
