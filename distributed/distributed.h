// Everything of gradtape::distributed: the process group, collective ops, data-parallel training.
#pragma once

#include "gradtape/distributed/checkpoint.h"
#include "gradtape/distributed/collectives.h"
#include "gradtape/distributed/communicator.h"
#include "gradtape/distributed/moments.h"
#include "gradtape/distributed/optimizer.h"
