;; SHA-256 (FIPS 180-4) for src/sticky/hmac_sha256.ts: the compression function, and HMAC's
;; whole finish for a message of at most 55 bytes (its inner block, then the outer one) in one
;; call, since each call from JS costs about as much as a tenth of a compression.
;;
;; Assembled with the wabt npm package by src/sticky/sha256_wasm_build.ts into
;; src/sticky/sha256_wasm.ts (the bytes, embedded); tests/unit/hmac_sha256.test.ts fails when the
;; embedded bytes are not this file's. After editing:  deno run -A src/sticky/sha256_wasm_build.ts
;;
;; The memory, one 64 KiB page, byte offsets:
;;     0  STATE    8 words: the chaining value a..h (i32s in wasm's byte order, little-endian,
;;                 as an Int32Array over the memory reads them)
;;    64  BLOCKS   128 bytes: the block(s) to compress, in the order they are hashed
;;   192  DIGEST   32 bytes: the digest `hmac` writes, in the order they are hashed
;;   256  W        64 words: the message schedule
;;   512  K        64 words: the round constants, stored by $init
(module
  (memory (export "memory") 1)
  (start $init)

  (func $init
    (i32.store offset=512 (i32.const 0) (i32.const 0x428a2f98)) (i32.store offset=516 (i32.const 0) (i32.const 0x71374491))
    (i32.store offset=520 (i32.const 0) (i32.const 0xb5c0fbcf)) (i32.store offset=524 (i32.const 0) (i32.const 0xe9b5dba5))
    (i32.store offset=528 (i32.const 0) (i32.const 0x3956c25b)) (i32.store offset=532 (i32.const 0) (i32.const 0x59f111f1))
    (i32.store offset=536 (i32.const 0) (i32.const 0x923f82a4)) (i32.store offset=540 (i32.const 0) (i32.const 0xab1c5ed5))
    (i32.store offset=544 (i32.const 0) (i32.const 0xd807aa98)) (i32.store offset=548 (i32.const 0) (i32.const 0x12835b01))
    (i32.store offset=552 (i32.const 0) (i32.const 0x243185be)) (i32.store offset=556 (i32.const 0) (i32.const 0x550c7dc3))
    (i32.store offset=560 (i32.const 0) (i32.const 0x72be5d74)) (i32.store offset=564 (i32.const 0) (i32.const 0x80deb1fe))
    (i32.store offset=568 (i32.const 0) (i32.const 0x9bdc06a7)) (i32.store offset=572 (i32.const 0) (i32.const 0xc19bf174))
    (i32.store offset=576 (i32.const 0) (i32.const 0xe49b69c1)) (i32.store offset=580 (i32.const 0) (i32.const 0xefbe4786))
    (i32.store offset=584 (i32.const 0) (i32.const 0x0fc19dc6)) (i32.store offset=588 (i32.const 0) (i32.const 0x240ca1cc))
    (i32.store offset=592 (i32.const 0) (i32.const 0x2de92c6f)) (i32.store offset=596 (i32.const 0) (i32.const 0x4a7484aa))
    (i32.store offset=600 (i32.const 0) (i32.const 0x5cb0a9dc)) (i32.store offset=604 (i32.const 0) (i32.const 0x76f988da))
    (i32.store offset=608 (i32.const 0) (i32.const 0x983e5152)) (i32.store offset=612 (i32.const 0) (i32.const 0xa831c66d))
    (i32.store offset=616 (i32.const 0) (i32.const 0xb00327c8)) (i32.store offset=620 (i32.const 0) (i32.const 0xbf597fc7))
    (i32.store offset=624 (i32.const 0) (i32.const 0xc6e00bf3)) (i32.store offset=628 (i32.const 0) (i32.const 0xd5a79147))
    (i32.store offset=632 (i32.const 0) (i32.const 0x06ca6351)) (i32.store offset=636 (i32.const 0) (i32.const 0x14292967))
    (i32.store offset=640 (i32.const 0) (i32.const 0x27b70a85)) (i32.store offset=644 (i32.const 0) (i32.const 0x2e1b2138))
    (i32.store offset=648 (i32.const 0) (i32.const 0x4d2c6dfc)) (i32.store offset=652 (i32.const 0) (i32.const 0x53380d13))
    (i32.store offset=656 (i32.const 0) (i32.const 0x650a7354)) (i32.store offset=660 (i32.const 0) (i32.const 0x766a0abb))
    (i32.store offset=664 (i32.const 0) (i32.const 0x81c2c92e)) (i32.store offset=668 (i32.const 0) (i32.const 0x92722c85))
    (i32.store offset=672 (i32.const 0) (i32.const 0xa2bfe8a1)) (i32.store offset=676 (i32.const 0) (i32.const 0xa81a664b))
    (i32.store offset=680 (i32.const 0) (i32.const 0xc24b8b70)) (i32.store offset=684 (i32.const 0) (i32.const 0xc76c51a3))
    (i32.store offset=688 (i32.const 0) (i32.const 0xd192e819)) (i32.store offset=692 (i32.const 0) (i32.const 0xd6990624))
    (i32.store offset=696 (i32.const 0) (i32.const 0xf40e3585)) (i32.store offset=700 (i32.const 0) (i32.const 0x106aa070))
    (i32.store offset=704 (i32.const 0) (i32.const 0x19a4c116)) (i32.store offset=708 (i32.const 0) (i32.const 0x1e376c08))
    (i32.store offset=712 (i32.const 0) (i32.const 0x2748774c)) (i32.store offset=716 (i32.const 0) (i32.const 0x34b0bcb5))
    (i32.store offset=720 (i32.const 0) (i32.const 0x391c0cb3)) (i32.store offset=724 (i32.const 0) (i32.const 0x4ed8aa4a))
    (i32.store offset=728 (i32.const 0) (i32.const 0x5b9cca4f)) (i32.store offset=732 (i32.const 0) (i32.const 0x682e6ff3))
    (i32.store offset=736 (i32.const 0) (i32.const 0x748f82ee)) (i32.store offset=740 (i32.const 0) (i32.const 0x78a5636f))
    (i32.store offset=744 (i32.const 0) (i32.const 0x84c87814)) (i32.store offset=748 (i32.const 0) (i32.const 0x8cc70208))
    (i32.store offset=752 (i32.const 0) (i32.const 0x90befffa)) (i32.store offset=756 (i32.const 0) (i32.const 0xa4506ceb))
    (i32.store offset=760 (i32.const 0) (i32.const 0xbef9a3f7)) (i32.store offset=764 (i32.const 0) (i32.const 0xc67178f2))
  )

  ;; The byte-swapped word: SHA-256 reads its blocks as big-endian words, wasm's loads and
  ;; stores are little-endian.
  (func $swap (param $x i32) (result i32)
    (i32.or
      (i32.and (i32.rotl (local.get $x) (i32.const 8)) (i32.const 0x00ff00ff))
      (i32.and (i32.rotr (local.get $x) (i32.const 8)) (i32.const 0xff00ff00))))

  ;; FIPS 180-4's functions (4.2, 4.3, 4.4, 4.5); Ch and Maj in forms of fewer operations.
  (func $bigSigma0 (param $x i32) (result i32)
    (i32.xor
      (i32.xor (i32.rotr (local.get $x) (i32.const 2)) (i32.rotr (local.get $x) (i32.const 13)))
      (i32.rotr (local.get $x) (i32.const 22))))
  (func $bigSigma1 (param $x i32) (result i32)
    (i32.xor
      (i32.xor (i32.rotr (local.get $x) (i32.const 6)) (i32.rotr (local.get $x) (i32.const 11)))
      (i32.rotr (local.get $x) (i32.const 25))))
  (func $sigma0 (param $x i32) (result i32)
    (i32.xor
      (i32.xor (i32.rotr (local.get $x) (i32.const 7)) (i32.rotr (local.get $x) (i32.const 18)))
      (i32.shr_u (local.get $x) (i32.const 3))))
  (func $sigma1 (param $x i32) (result i32)
    (i32.xor
      (i32.xor (i32.rotr (local.get $x) (i32.const 17)) (i32.rotr (local.get $x) (i32.const 19)))
      (i32.shr_u (local.get $x) (i32.const 10))))
  ;; (e & f) ^ (~e & g): f where e has a 1, g where it has a 0
  (func $ch (param $e i32) (param $f i32) (param $g i32) (result i32)
    (i32.xor (local.get $g) (i32.and (local.get $e) (i32.xor (local.get $f) (local.get $g)))))
  ;; (a & b) ^ (a & c) ^ (b & c): the majority of each bit
  (func $maj (param $a i32) (param $b i32) (param $c i32) (result i32)
    (i32.or
      (i32.and (local.get $a) (local.get $b))
      (i32.and (local.get $c) (i32.or (local.get $a) (local.get $b)))))

  ;; Compresses the 64 bytes at $block into STATE (FIPS 180-4 6.2.2).
  (func $compress (param $block i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32)
    (local $e i32) (local $f i32) (local $g i32) (local $h i32)
    (local $i i32) (local $t1 i32)
    ;; W[0..15]: the block's words ($i = 4t)
    (loop $words
      (i32.store offset=256 (local.get $i)
        (call $swap (i32.load (i32.add (local.get $block) (local.get $i)))))
      (br_if $words (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 4))) (i32.const 64))))
    ;; W[16..63]: W[t] = sigma1(W[t-2]) + W[t-7] + sigma0(W[t-15]) + W[t-16]
    (loop $schedule
      (i32.store offset=256 (local.get $i)
        (i32.add
          (i32.add
            (call $sigma1 (i32.load offset=248 (local.get $i)))
            (i32.load offset=228 (local.get $i)))
          (i32.add
            (call $sigma0 (i32.load offset=196 (local.get $i)))
            (i32.load offset=192 (local.get $i)))))
      (br_if $schedule
        (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 4))) (i32.const 256))))
    (local.set $a (i32.load offset=0 (i32.const 0)))
    (local.set $b (i32.load offset=4 (i32.const 0)))
    (local.set $c (i32.load offset=8 (i32.const 0)))
    (local.set $d (i32.load offset=12 (i32.const 0)))
    (local.set $e (i32.load offset=16 (i32.const 0)))
    (local.set $f (i32.load offset=20 (i32.const 0)))
    (local.set $g (i32.load offset=24 (i32.const 0)))
    (local.set $h (i32.load offset=28 (i32.const 0)))
    ;; 64 rounds, 8 to an iteration ($i = 4 * the first's number): each round computes the new a
    ;; and e, and the variables' roles shift by one from a round to the next instead of their
    ;; values (so that no round moves six values along)
    (local.set $i (i32.const 0))
    (loop $rounds
        ;; round i + 0: (a, ..., h) = (a, b, c, d, e, f, g, h)
        (local.set $t1
          (i32.add
            (i32.add (local.get $h) (call $bigSigma1 (local.get $e)))
            (i32.add
              (call $ch (local.get $e) (local.get $f) (local.get $g))
              (i32.add (i32.load offset=512 (local.get $i)) (i32.load offset=256 (local.get $i))))))
        (local.set $d (i32.add (local.get $d) (local.get $t1)))
        (local.set $h
          (i32.add (local.get $t1)
            (i32.add (call $bigSigma0 (local.get $a)) (call $maj (local.get $a) (local.get $b) (local.get $c)))))
        ;; round i + 1: (a, ..., h) = (h, a, b, c, d, e, f, g)
        (local.set $t1
          (i32.add
            (i32.add (local.get $g) (call $bigSigma1 (local.get $d)))
            (i32.add
              (call $ch (local.get $d) (local.get $e) (local.get $f))
              (i32.add (i32.load offset=516 (local.get $i)) (i32.load offset=260 (local.get $i))))))
        (local.set $c (i32.add (local.get $c) (local.get $t1)))
        (local.set $g
          (i32.add (local.get $t1)
            (i32.add (call $bigSigma0 (local.get $h)) (call $maj (local.get $h) (local.get $a) (local.get $b)))))
        ;; round i + 2: (a, ..., h) = (g, h, a, b, c, d, e, f)
        (local.set $t1
          (i32.add
            (i32.add (local.get $f) (call $bigSigma1 (local.get $c)))
            (i32.add
              (call $ch (local.get $c) (local.get $d) (local.get $e))
              (i32.add (i32.load offset=520 (local.get $i)) (i32.load offset=264 (local.get $i))))))
        (local.set $b (i32.add (local.get $b) (local.get $t1)))
        (local.set $f
          (i32.add (local.get $t1)
            (i32.add (call $bigSigma0 (local.get $g)) (call $maj (local.get $g) (local.get $h) (local.get $a)))))
        ;; round i + 3: (a, ..., h) = (f, g, h, a, b, c, d, e)
        (local.set $t1
          (i32.add
            (i32.add (local.get $e) (call $bigSigma1 (local.get $b)))
            (i32.add
              (call $ch (local.get $b) (local.get $c) (local.get $d))
              (i32.add (i32.load offset=524 (local.get $i)) (i32.load offset=268 (local.get $i))))))
        (local.set $a (i32.add (local.get $a) (local.get $t1)))
        (local.set $e
          (i32.add (local.get $t1)
            (i32.add (call $bigSigma0 (local.get $f)) (call $maj (local.get $f) (local.get $g) (local.get $h)))))
        ;; round i + 4: (a, ..., h) = (e, f, g, h, a, b, c, d)
        (local.set $t1
          (i32.add
            (i32.add (local.get $d) (call $bigSigma1 (local.get $a)))
            (i32.add
              (call $ch (local.get $a) (local.get $b) (local.get $c))
              (i32.add (i32.load offset=528 (local.get $i)) (i32.load offset=272 (local.get $i))))))
        (local.set $h (i32.add (local.get $h) (local.get $t1)))
        (local.set $d
          (i32.add (local.get $t1)
            (i32.add (call $bigSigma0 (local.get $e)) (call $maj (local.get $e) (local.get $f) (local.get $g)))))
        ;; round i + 5: (a, ..., h) = (d, e, f, g, h, a, b, c)
        (local.set $t1
          (i32.add
            (i32.add (local.get $c) (call $bigSigma1 (local.get $h)))
            (i32.add
              (call $ch (local.get $h) (local.get $a) (local.get $b))
              (i32.add (i32.load offset=532 (local.get $i)) (i32.load offset=276 (local.get $i))))))
        (local.set $g (i32.add (local.get $g) (local.get $t1)))
        (local.set $c
          (i32.add (local.get $t1)
            (i32.add (call $bigSigma0 (local.get $d)) (call $maj (local.get $d) (local.get $e) (local.get $f)))))
        ;; round i + 6: (a, ..., h) = (c, d, e, f, g, h, a, b)
        (local.set $t1
          (i32.add
            (i32.add (local.get $b) (call $bigSigma1 (local.get $g)))
            (i32.add
              (call $ch (local.get $g) (local.get $h) (local.get $a))
              (i32.add (i32.load offset=536 (local.get $i)) (i32.load offset=280 (local.get $i))))))
        (local.set $f (i32.add (local.get $f) (local.get $t1)))
        (local.set $b
          (i32.add (local.get $t1)
            (i32.add (call $bigSigma0 (local.get $c)) (call $maj (local.get $c) (local.get $d) (local.get $e)))))
        ;; round i + 7: (a, ..., h) = (b, c, d, e, f, g, h, a)
        (local.set $t1
          (i32.add
            (i32.add (local.get $a) (call $bigSigma1 (local.get $f)))
            (i32.add
              (call $ch (local.get $f) (local.get $g) (local.get $h))
              (i32.add (i32.load offset=540 (local.get $i)) (i32.load offset=284 (local.get $i))))))
        (local.set $e (i32.add (local.get $e) (local.get $t1)))
        (local.set $a
          (i32.add (local.get $t1)
            (i32.add (call $bigSigma0 (local.get $b)) (call $maj (local.get $b) (local.get $c) (local.get $d)))))
      (br_if $rounds
        (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 32))) (i32.const 256))))
    (i32.store offset=0 (i32.const 0) (i32.add (i32.load offset=0 (i32.const 0)) (local.get $a)))
    (i32.store offset=4 (i32.const 0) (i32.add (i32.load offset=4 (i32.const 0)) (local.get $b)))
    (i32.store offset=8 (i32.const 0) (i32.add (i32.load offset=8 (i32.const 0)) (local.get $c)))
    (i32.store offset=12 (i32.const 0) (i32.add (i32.load offset=12 (i32.const 0)) (local.get $d)))
    (i32.store offset=16 (i32.const 0) (i32.add (i32.load offset=16 (i32.const 0)) (local.get $e)))
    (i32.store offset=20 (i32.const 0) (i32.add (i32.load offset=20 (i32.const 0)) (local.get $f)))
    (i32.store offset=24 (i32.const 0) (i32.add (i32.load offset=24 (i32.const 0)) (local.get $g)))
    (i32.store offset=28 (i32.const 0) (i32.add (i32.load offset=28 (i32.const 0)) (local.get $h))))

  ;; Compresses the $count blocks at BLOCKS into STATE (1 or 2: JS pads, and copies a longer
  ;; message in block by block).
  (func (export "compress") (param $count i32)
    (call $compress (i32.const 64))
    (if (i32.eq (local.get $count) (i32.const 2))
      (then (call $compress (i32.const 128)))))

  ;; Writes the digest that STATE holds at $to..$to+31 (its words big-endian).
  (func $digest (param $to i32)
    (i32.store offset=0 (local.get $to) (call $swap (i32.load offset=0 (i32.const 0))))
    (i32.store offset=4 (local.get $to) (call $swap (i32.load offset=4 (i32.const 0))))
    (i32.store offset=8 (local.get $to) (call $swap (i32.load offset=8 (i32.const 0))))
    (i32.store offset=12 (local.get $to) (call $swap (i32.load offset=12 (i32.const 0))))
    (i32.store offset=16 (local.get $to) (call $swap (i32.load offset=16 (i32.const 0))))
    (i32.store offset=20 (local.get $to) (call $swap (i32.load offset=20 (i32.const 0))))
    (i32.store offset=24 (local.get $to) (call $swap (i32.load offset=24 (i32.const 0))))
    (i32.store offset=28 (local.get $to) (call $swap (i32.load offset=28 (i32.const 0)))))

  ;; HMAC's finish for a message of $length <= 55 bytes at BLOCKS (one padded block): the inner
  ;; hash goes on from the state $i0..$i7 (which has absorbed $before bytes: the key's pad, and
  ;; perhaps a context block), the outer one from $o0..$o7 (the key's outer pad absorbed); the
  ;; tag is written at DIGEST. The states come as arguments: storing them from JS would cost more.
  (func (export "hmac") (param $length i32) (param $before i32)
    (param $i0 i32) (param $i1 i32) (param $i2 i32) (param $i3 i32)
    (param $i4 i32) (param $i5 i32) (param $i6 i32) (param $i7 i32)
    (param $o0 i32) (param $o1 i32) (param $o2 i32) (param $o3 i32)
    (param $o4 i32) (param $o5 i32) (param $o6 i32) (param $o7 i32)
    (i32.store offset=0 (i32.const 0) (local.get $i0))
    (i32.store offset=4 (i32.const 0) (local.get $i1))
    (i32.store offset=8 (i32.const 0) (local.get $i2))
    (i32.store offset=12 (i32.const 0) (local.get $i3))
    (i32.store offset=16 (i32.const 0) (local.get $i4))
    (i32.store offset=20 (i32.const 0) (local.get $i5))
    (i32.store offset=24 (i32.const 0) (local.get $i6))
    (i32.store offset=28 (i32.const 0) (local.get $i7))
    ;; The padding (5.1.1): a 1 bit, 0s, and the length in bits as 64 bits, whose high word is 0
    ;; here (the caller sends no message near 2^29 bytes).
    (i32.store8 offset=64 (local.get $length) (i32.const 0x80))
    (memory.fill
      (i32.add (local.get $length) (i32.const 65)) (i32.const 0) (i32.sub (i32.const 59) (local.get $length)))
    (i32.store offset=124 (i32.const 0)
      (call $swap (i32.shl (i32.add (local.get $before) (local.get $length)) (i32.const 3))))
    (call $compress (i32.const 64))
    ;; The outer block: the inner digest (32 bytes), its padding, and 64 + 32 bytes as bits.
    (call $digest (i32.const 64))
    (i32.store offset=96 (i32.const 0) (i32.const 0x80))
    (i64.store offset=100 (i32.const 0) (i64.const 0))
    (i64.store offset=108 (i32.const 0) (i64.const 0))
    (i64.store offset=116 (i32.const 0) (i64.const 0))
    (i32.store offset=124 (i32.const 0) (call $swap (i32.const 768)))
    (i32.store offset=0 (i32.const 0) (local.get $o0))
    (i32.store offset=4 (i32.const 0) (local.get $o1))
    (i32.store offset=8 (i32.const 0) (local.get $o2))
    (i32.store offset=12 (i32.const 0) (local.get $o3))
    (i32.store offset=16 (i32.const 0) (local.get $o4))
    (i32.store offset=20 (i32.const 0) (local.get $o5))
    (i32.store offset=24 (i32.const 0) (local.get $o6))
    (i32.store offset=28 (i32.const 0) (local.get $o7))
    (call $compress (i32.const 64))
    (call $digest (i32.const 192)))
)
