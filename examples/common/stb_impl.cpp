// The one translation unit of ember_data that holds the stb implementations (stb is header-only:
// every other file includes the headers for declarations only).
// Only the decoders ImageFolder needs: stb_image picks a decoder from the file's bytes, not its
// name, so a ".png" holding a PSD, HDR, PIC or GIF would otherwise reach its less tested decoders.
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STB_IMAGE_IMPLEMENTATION
#include "stb_image.h"
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include "stb_image_resize.h"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"
