# The optional native receive path (collectors/native/recv.c). Built by
# collectors/native/build.mjs from `npm install`; when it cannot be built the collector
# falls back to node:dgram (collectors/batch-receive.ts).
{
  "targets": [
    {
      "target_name": "scitags_recv",
      "sources": ["collectors/native/recv.c"],
      # Node-API 8: napi_add_async_cleanup_hook. ABI-stable, so one build runs on Node 20, 22, 24.
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
