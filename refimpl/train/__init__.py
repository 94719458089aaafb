"""MAE pretraining: the ``mae-pretrain`` command and the pieces it is made of.

| module | what |
| --- | --- |
| [`refimpl.train.pretrain`][refimpl.train.pretrain] | the training loop ([`train`][refimpl.train.pretrain.train]) and the command line ([`main`][refimpl.train.pretrain.main]) |
| [`refimpl.train.run_dir`][refimpl.train.run_dir] | the run folder: which checkpoint a start resumes, another run refused, the lock |
| [`refimpl.train.config`][refimpl.train.config] | [`PretrainConfig`][refimpl.train.config.PretrainConfig]: every choice of a run, with the paper's recipe as defaults |
| [`refimpl.train.data`][refimpl.train.data] | folder scan, embedded photographs, augmentation, a sampler that resumes mid-epoch |
| [`refimpl.train.schedule`][refimpl.train.schedule] | AdamW parameter groups, warmup + cosine learning rate |
| [`refimpl.train.checkpoint`][refimpl.train.checkpoint] | atomic checkpoints, resume checks, encoder export |
| [`refimpl.train.distributed`][refimpl.train.distributed] | joining the ``torchrun`` process group |
| [`refimpl.train.reconstruction`][refimpl.train.reconstruction] | what the MAE reconstructs of a fixed batch, as the ``recon-<step>.png`` grid |

The guide [MAE 预训练](../../../guides/mae-pretraining.md) shows how to run it.
"""
