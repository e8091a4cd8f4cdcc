// The translation unit of ember_data that holds the stb decoder and resizer implementations (stb
// is header-only: every other file includes the headers for declarations only). The encoder is
// in stb_write_impl.cpp.
// Only the decoders ImageFolder needs: stb_image picks a decoder from the file's bytes, not its
// name, so a ".png" holding a PSD, HDR, PIC or GIF would otherwise reach its less tested decoders.
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STB_IMAGE_IMPLEMENTATION
#include "stb_image.h"
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include "stb_image_resize.h"
