"""``pydl.nn.utils``: gradient clipping and parameter-norm penalties (as ``torch.nn.utils``)."""
from pydl.nn.utils.clip_grad import (clip_grad_norm_, clip_grad_value_,  # noqa: F401
                                     clip_grads_with_norm_, get_total_norm)
from pydl.nn.utils.penalties import l1_penalty, l2_penalty, soft_sharing_penalty  # noqa: F401
