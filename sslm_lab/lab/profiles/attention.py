"""01_attention: softmax saturation, MiniLM parity, the attention timing."""

from __future__ import annotations

from sslm_lab.lab.profiles.parameters import Integer, Parameters
from sslm_lab.lab.profiles.table import knob, sizes_table


def _whole_heads(values: dict) -> str | None:
    if values["n_embd"] % values["n_head"]:
        return (
            f"n_embd={values['n_embd']} is not divisible by n_head={values['n_head']}: each head "
            f"gets n_embd / n_head dimensions"
        )
    return None


# The notebook's parameters cell, besides `profile`: what each value may be. The toy
# layers of the first sections print their weights, so they stay small.
PARAMETERS = Parameters(
    seed=Integer.seed(),
    # At least 3: the encoder's LayerNorm leaves n_embd - 2 degrees of freedom per token (mean
    # 0, variance 1), so at 1 every token comes out the same and at 2 only a sign is left:
    # the check that position embeddings tell the two "to"s apart failed for 17 of 20 seeds
    # at 2, none of 100 at 3.
    n_embd=Integer(low=3, high=64),
    n_head=Integer(low=1, high=64),
    # Draws per d_k for the saturation plot, whose cell asserts means over the draws (the
    # scaled scores' spread within 0.8-1.2, the scaled softmax's largest weight flat in d_k
    # within 0.1). Of 1,000 seeds those failed for about 100 at 16 draws, 10 at 32, 1 at 64
    # and none at 128 (smoke's and laptop's d_k alike); 1 draw failed at once. So at least
    # smoke's 64: fewer fail for more seeds than the profiles' own draws do. At most the gpu
    # profile's 4,000: the keys drawn at d_k = 1024 are draws x 16 x 1024 floats, 0.26 GB at
    # 4,000 (100,000 took 6.6 GB and minutes).
    saturation_samples=Integer(low=64, high=4_000, none="the profile's saturation_samples"),
    rules=(_whole_heads,),
)


# fmt: off
@sizes_table
class AttentionSizes:
    """01_attention: softmax saturation, MiniLM parity, the attention timing."""

    #                                   smoke             laptop                       gpu
    # d_k values of the "why divide by sqrt(d_k)" plot
    head_dims: tuple[int, ...] = knob(  (4, 64, 1024),    (4, 16, 64, 256, 1024),      (4, 16, 64, 256, 1024))  # noqa: E501
    saturation_samples: int = knob(     64,               1000,                        4000)  # query/key draws per d_k
    saturation_keys: int = knob(        16,               16,                          16)    # keys each softmax chooses among
    shakespeare_lines: int = knob(      4,                16,                          64)    # lines through MiniLM
    # sequence lengths, timed steps per length and sequences per step of the timing
    bench_seq_lens: tuple[int, ...] = knob((32, 64),      (64, 128, 256, 512),         (128, 512, 1024, 2048))  # noqa: E501
    bench_repeats: int = knob(          2,                5,                           20)
    bench_batch: int = knob(            2,                8,                           32)
# fmt: on
