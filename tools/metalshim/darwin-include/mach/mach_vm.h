/*
 * mach/mach_vm.h, a stand-in for the type-check only (tools/metalshim/check-objc.sh).
 *
 * The iOS SDK that part (a) of check-metal uses has an mach_vm.h that is just
 * "#error mach_vm.h unsupported", while macOS's declares mach_vm_region. A
 * dependency of cmd/gomps (prometheus/client_golang's process collector,
 * darwin && cgo) includes it, which would stop the darwin cgo go vet of
 * ./cmd/gomps before our own code is type-checked. This header declares the
 * one function that file calls, with macOS's public signature. It is put on
 * the include path only for that vet; nothing built with it ever runs.
 */
#ifndef GOMPS_SHIM_MACH_VM_H
#define GOMPS_SHIM_MACH_VM_H

#include <mach/mach_types.h>
#include <mach/vm_region.h>

kern_return_t mach_vm_region(vm_map_t target_task, mach_vm_address_t *address, mach_vm_size_t *size,
                             vm_region_flavor_t flavor, vm_region_info_t info, mach_msg_type_number_t *infoCnt,
                             mach_port_t *object_name);

#endif
