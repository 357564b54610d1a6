"""A stand-in for ``cupy.cuda.nccl``'s launcher-facing API (no GPU here): what NCCLBackend
does before any CUDA call, the unique id made on rank 0 and broadcast over MPI, runs for real."""
import os


class FakeNccl:
    made = []

    @staticmethod
    def get_unique_id():
        # NCCL's id is 128 bytes; CuPy hands it over as a tuple of ints
        return tuple(os.urandom(128))

    class NcclCommunicator:
        def __init__(self, ndev, uid, rank):
            self.ndev, self.uid, self.rank = ndev, uid, rank
            FakeNccl.made.append(self)
