;; Base64 (RFC 4648, standard alphabet) of whole 12-byte blocks, 16 characters per block, with
;; WebAssembly SIMD: no JavaScript string is made, so encoding a large file leaves nothing for the
;; garbage collector (see base64-workspace.ts). The compiled bytes are in encoder-wasm.ts, written
;; by `node scripts/build-wasm.js` (a test checks they match this file).
;;
;; One block: the shuffle puts each 3 input bytes a b c in a 32-bit lane as b a c b; in 16-bit
;; halves that is a:b and b:c, whose bits hold the four 6-bit indices at known places. Masks and
;; 16-bit multiplies (a left shift per half) then one right shift line the four indices up as
;; bytes; a 16-entry table (swizzle) gives each index the offset to its character: +65 for 0–25
;; ('A'), +71 for 26–51 ('a'), −4 for 52–61 ('0'), −19 for 62 ('+'), −16 for 63 ('/').
(module
  (import "env" "memory" (memory 1))
  ;; encode(src, dst, blocks): reads 16 bytes per block (4 beyond it: the caller leaves that slack).
  (func (export "encode") (param $src i32) (param $dst i32) (param $blocks i32)
    (local $v v128)
    (block $done
      (br_if $done (i32.eqz (local.get $blocks)))
      (loop $next
        (local.set $v
          (i8x16.shuffle 1 0 2 1 4 3 5 4 7 6 8 7 10 9 11 10
            (v128.load align=1 (local.get $src)) (v128.load align=1 (local.get $src))))
        (local.set $v
          (v128.or
            (i16x8.shr_u
              (i16x8.mul (v128.and (local.get $v) (v128.const i32x4 0x0fc0fc00 0x0fc0fc00 0x0fc0fc00 0x0fc0fc00))
                         (v128.const i16x8 1 16 1 16 1 16 1 16))
              (i32.const 10))
            (i16x8.mul (v128.and (local.get $v) (v128.const i32x4 0x003f03f0 0x003f03f0 0x003f03f0 0x003f03f0))
                       (v128.const i16x8 0x10 0x100 0x10 0x100 0x10 0x100 0x10 0x100))))
        (v128.store align=1 (local.get $dst)
          (i8x16.add
            (i8x16.swizzle
              (v128.const i8x16 71 -4 -4 -4 -4 -4 -4 -4 -4 -4 -4 -19 -16 65 0 0)
              (v128.or
                (i8x16.sub_sat_u (local.get $v) (v128.const i8x16 51 51 51 51 51 51 51 51 51 51 51 51 51 51 51 51))
                (v128.and (i8x16.lt_u (local.get $v) (v128.const i8x16 26 26 26 26 26 26 26 26 26 26 26 26 26 26 26 26))
                          (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13))))
            (local.get $v)))
        (local.set $src (i32.add (local.get $src) (i32.const 12)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br_if $next (local.tee $blocks (i32.sub (local.get $blocks) (i32.const 1))))))))
