"""``pydl.optim``: optimizers whose steps are fused C++ kernels (one call per parameter group),
and learning-rate schedules, with ``torch.optim``'s names, defaults and update formulas."""
from pydl.optim import lr_scheduler, swa_utils  # noqa: F401
from pydl.optim.adagrad import Adagrad  # noqa: F401
from pydl.optim.adam import Adam, AdamW  # noqa: F401
from pydl.optim.adam_variants import Adadelta, Adamax, NAdam, RAdam  # noqa: F401
from pydl.optim.lbfgs import LBFGS  # noqa: F401
from pydl.optim.newton import Newton  # noqa: F401
from pydl.optim.optimizer import Optimizer  # noqa: F401
from pydl.optim.rmsprop import RMSprop  # noqa: F401
from pydl.optim.sgd import SGD  # noqa: F401
