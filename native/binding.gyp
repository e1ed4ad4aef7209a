{
  "targets": [
    {
      "target_name": "heed_gemm",
      "sources": ["gemm.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno", "-ffp-contract=fast"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-pthread"]
    },
    { "target_name": "heed_adamw", "sources": ["adamw.cc"], "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno", "-ffp-contract=off"], "ldflags": ["-pthread"] }
  ]
}
