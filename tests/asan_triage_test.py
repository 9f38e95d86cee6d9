"""bench/asan_triage.py sorts sanitizer reports: a report is ours when a frame of ours lies above
libhdf5's entry, libhdf5's when our frames are only its callers."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))

import asan_triage  # noqa: E402

OURS = "/src/daemon/"


def report(*frames, kind="SEGV on unknown address"):
    lines = [f"==1==ERROR: AddressSanitizer: {kind}"]
    for i, (function, where) in enumerate(frames):
        lines.append(f"    #{i} 0x{4096 + i:x} in {function} {where}")
    lines.append(f"SUMMARY: AddressSanitizer: {kind}")
    return "\n".join(lines) + "\n"


LIBHDF5 = "(/usr/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x1234)"


class TriageTest(unittest.TestCase):
    def kind(self, text):
        return asan_triage.classify(text, OURS)[0]

    def test_crash_inside_libhdf5_with_our_frames_only_below_is_libhdf5s(self):
        text = report(("H5FL_arr_malloc", LIBHDF5), ("H5O_msg_read", LIBHDF5),
                      ("H5Ovisit2", LIBHDF5), ("InspectHdf5", OURS + "hdf5_inspector.cc:500"),
                      ("main", OURS + "main.cc:40"))
        self.assertEqual(self.kind(text), "hdf5")

    def test_a_crash_inside_a_libhdf5_call_from_our_visit_callback_is_libhdf5s(self):
        # Every read happens in the H5Ovisit2 callback: libhdf5 crashing inside H5Dread on a
        # malformed file is what the verifier child contains (seen on the corpus: H5Dread,
        # H5Oopen, H5Literate, H5Aclose called from VisitObject).
        text = report(("__interceptor_memcpy", "libsanitizer/x.inc:1"), ("H5D__read", LIBHDF5),
                      ("H5Dread", LIBHDF5), ("ReadAllData", OURS + "hdf5_inspector.cc:250"),
                      ("VisitObject", OURS + "hdf5_inspector.cc:380"),
                      ("H5O__visit", LIBHDF5), ("H5Ovisit2", LIBHDF5),
                      ("InspectHdf5", OURS + "hdf5_inspector.cc:500"))
        self.assertEqual(self.kind(text), "hdf5")

    def test_our_callback_crashing_under_libhdf5_is_ours(self):
        # libhdf5 called back into our code, and our code crashed: libhdf5 is only below it.
        text = report(("__asan_memcpy", "(libasan.so.8+0x1)"),
                      ("CountNonfinite", OURS + "nonfinite_scan.cc:60"),
                      ("ReadAllData", OURS + "hdf5_inspector.cc:250"),
                      ("VisitObject", OURS + "hdf5_inspector.cc:380"),
                      ("H5O__visit", LIBHDF5), ("H5Ovisit2", LIBHDF5),
                      ("InspectHdf5", OURS + "hdf5_inspector.cc:500"))
        kind, line = asan_triage.classify(text, OURS)
        self.assertEqual(kind, "ours")
        self.assertIn("CountNonfinite", line)

    def test_crash_in_our_code_is_ours(self):
        text = report(("__asan_memcpy", "(libasan.so.8+0x1)"),
                      ("CountNonfinite", OURS + "nonfinite_scan.cc:60"), ("main", OURS + "main.cc:1"))
        self.assertEqual(self.kind(text), "ours")

    def test_only_the_first_stack_decides(self):
        text = report(("H5FL_blk_free", LIBHDF5), ("H5Fclose", LIBHDF5),
                      ("InspectHdf5", OURS + "hdf5_inspector.cc:520"))
        text += "freed by thread T0 here:\n    #0 0x1 in free x\n    #1 0x2 in Walk " + OURS + "x.cc:1\n"
        self.assertEqual(self.kind(text), "hdf5")

    def test_ubsan_finding_is_ours_and_a_leak_without_our_frames_is_another_librarys(self):
        self.assertEqual(self.kind("x.cc:1:2: runtime error: shift exponent 64\n"), "ours")
        leak = ("==1==ERROR: LeakSanitizer: detected memory leaks\n"
                "    #0 0x1 in malloc x\n    #1 0x2 in yaml_thing (/usr/lib/libyaml.so+0x1)\n")
        self.assertEqual(self.kind(leak), "other")
        self.assertEqual(self.kind(leak.replace("(/usr/lib/libyaml.so+0x1)", OURS + "config.cc:3")),
                         "ours")


if __name__ == "__main__":
    unittest.main()
