// Device queries compiled against the harness (it reports no GPU).
#include "../device.cu"
